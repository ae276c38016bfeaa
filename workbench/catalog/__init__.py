"""The catalog: the single source of truth for datasets, cubes and models."""

from workbench.catalog.load import columns_of, expression_names, load_catalog, parse_catalog
from workbench.catalog.models import (
    TIME_LEVELS,
    Catalog,
    Cube,
    Dataset,
    Join,
    Measure,
    Model,
    Rule,
)

__all__ = [
    "TIME_LEVELS",
    "Catalog",
    "Cube",
    "Dataset",
    "Join",
    "Measure",
    "Model",
    "Rule",
    "columns_of",
    "expression_names",
    "load_catalog",
    "parse_catalog",
]
