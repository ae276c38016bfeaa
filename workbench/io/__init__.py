"""Reading and writing: sources, versioned Delta tables, the confined workspace."""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".csvfile": ("TEXT",),
        ".delta": (
            "open_table",
            "read_table",
            "table_rows",
            "write_table",
        ),
        ".sources": (
            "read_csv_as_text",
            "resolve_source",
        ),
        ".spreadsheets": (
            "csv_text",
            "excel_bytes",
            "neutralise_formulas",
        ),
        ".workspace": (
            "Workspace",
            "read_json",
            "write_json_atomic",
        ),
    },
)
