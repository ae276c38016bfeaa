"""Tables written for download as CSV or Excel, with formula injection neutralised.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and a leading tab or carriage return can hide
one. Such text comes from data (a member name, a quarantined value), so every download goes
through :func:`neutralise_formulas`, which prefixes those text cells with a single quote as
OWASP's CSV-injection guidance advises. Numbers stay numbers: only text cells change.
"""

from __future__ import annotations

import csv
import io

import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and headers cannot start a formula.

    Examples
    --------
    >>> neutralise_formulas(pd.DataFrame({"a": ["=1+1", "ok"], "n": [-1, 2]})).to_dict("list")
    {'a': ["'=1+1", 'ok'], 'n': [-1, 2]}
    """
    out = frame.copy()
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if _holds_text(column):
            out.isetitem(i, _neutralised(column))
    out.columns = [_safe_text(c) for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text for a download (no index), formulas neutralised."""
    # Text always quoted: pandas leaves a field holding a bare carriage return unquoted, and
    # readers then split the row there, so a hidden `=...` would start a new line's first cell.
    return neutralise_formulas(frame).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)


def excel_bytes(frame: pd.DataFrame, sheet: str = "data") -> bytes:
    """``frame`` as an .xlsx workbook for a download (no index), formulas neutralised."""
    out = io.BytesIO()
    # Excel limits sheet names to 31 characters.
    neutralise_formulas(frame).to_excel(out, index=False, sheet_name=_safe_text(sheet)[:31])
    return out.getvalue()


def _holds_text(column: pd.Series) -> bool:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)


def _neutralised(column: pd.Series) -> pd.Series:
    values = column.astype(object).to_numpy(copy=True)
    # Only str cells: an object column may also hold numbers, dates or missing values.
    for i, value in enumerate(values):
        values[i] = _safe_text(value)
    return pd.Series(values, index=column.index, name=column.name, dtype=object)


def _safe_text(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
