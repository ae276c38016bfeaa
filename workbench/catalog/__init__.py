"""The catalog: the single source of truth for datasets, cubes and models."""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".load": (
            "columns_of",
            "expression_names",
            "load_catalog",
            "parse_catalog",
        ),
        ".models": (
            "Catalog",
            "Cube",
            "Dataset",
            "Join",
            "Measure",
            "Model",
            "Rule",
            "TIME_LEVELS",
        ),
    },
)
