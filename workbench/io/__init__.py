"""Reading and writing: sources, versioned Delta tables, the confined workspace."""

from workbench.io.csvfile import TEXT
from workbench.io.delta import open_table, read_table, table_rows, write_table
from workbench.io.sources import read_csv_as_text, resolve_source
from workbench.io.spreadsheets import csv_text, excel_bytes, neutralise_formulas
from workbench.io.workspace import Workspace, read_json, write_json_atomic

__all__ = [
    "TEXT",
    "Workspace",
    "csv_text",
    "excel_bytes",
    "neutralise_formulas",
    "open_table",
    "read_csv_as_text",
    "read_json",
    "read_table",
    "resolve_source",
    "table_rows",
    "write_json_atomic",
    "write_table",
]
