"""The reference reader `lake verify` compares the lake against.

It shares no code with the promotion path (``io/csvfile.py`` reads with pyarrow, and
``validation/rules.py`` casts with Arrow compute and pandas): here a landed file is split into
physical lines by hand, each line is split with the standard library's ``csv`` module, and each
value is converted with Python's own ``int``, ``float`` and ``datetime.fromisoformat``. A bug in
either path then shows up as a difference instead of being repeated on both sides.

The meaning of a file is the one the catalog documents: line 1 (the first non-empty line) is the
header; each other non-empty line is one row; an unquoted field equal to one of the source's
``na_values`` is missing, a quoted one is text.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NA: object = None
UNREADABLE = object()  # a text the declared type does not admit
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_US = dt.timedelta(microseconds=1)
INT64 = (-(2**63), 2**63 - 1)
_NOT_NUMBERS = ("inf", "infinity", "nan")  # float() takes them; the catalog's float does not


def file_bytes(path: Path) -> bytes:
    """The landed file's content: every member of a .zip in order, or a .gz inflated."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            return b"".join(archive.read(m) for m in members)
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class SourceLines:
    """A delimited file as lines: the header, then per non-empty data line its number, its
    text, and its fields (str or ``NA``) or, when it does not split, why (``encoding``,
    ``quoting``). The field count is left to the caller."""

    header: list[str]
    numbers: list[int]
    texts: list[str]
    fields: list[list | str]


def source_lines(data: bytes, delimiter: str, na_values: set[str]) -> SourceLines:
    numbers, raws = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        if raw:
            numbers.append(number)
            raws.append(raw)
    if not raws:
        return SourceLines([], [], [], [])
    header = next(csv.reader([raws[0].decode("utf-8", errors="replace")], delimiter=delimiter))
    raws, numbers = raws[1:], numbers[1:]
    texts = [r.decode("utf-8", errors="replace") for r in raws]
    fields = [
        f if isinstance(f, str) else _missing(f, t, delimiter, na_values)
        for f, t in zip(_split(raws, texts, delimiter), texts, strict=True)
    ]
    return SourceLines(header, numbers, texts, fields)


def _split(raws: list[bytes], texts: list[str], delimiter: str) -> list[list[str] | str]:
    """Fields per line: one csv reader over all lines when every line is valid UTF-8 and no
    quoted field runs past its line, else line by line (slower, but names each bad line)."""
    try:
        b"\n".join(raws).decode("utf-8")
        reader = csv.reader(texts, delimiter=delimiter, strict=True)
        rows = list(reader)
        if len(rows) == len(texts) and reader.line_num == len(texts):
            return rows
    except (UnicodeDecodeError, csv.Error):
        pass
    return [_split_one(raw, delimiter) for raw in raws]


def _split_one(raw: bytes, delimiter: str) -> list[str] | str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "encoding"
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error:
        return "quoting"


def _missing(fields: list[str], text: str, delimiter: str, na_values: set[str]) -> list:
    """Unquoted fields equal to an NA text become ``NA``; quoted ones stay text."""
    if na_values.isdisjoint(fields):
        return fields
    quoted = _quoted(text, delimiter) if '"' in text else [False] * len(fields)
    return [NA if f in na_values and not q else f for f, q in zip(fields, quoted, strict=False)]


def _quoted(text: str, delimiter: str) -> list[bool]:
    """Which fields of a well-formed line are quoted (the csv module does not say)."""
    flags, i = [], 0
    while True:
        quoted = text.startswith('"', i)
        flags.append(quoted)
        if quoted:
            i += 1
            while True:
                i = text.index('"', i) + 1
                if not text.startswith('"', i):
                    break
                i += 1  # a doubled quote inside the field
        i = text.find(delimiter, i)
        if i < 0:
            return flags
        i += 1


# --- values ---------------------------------------------------------------------------------
# Each converter turns one source text into the value the lake must hold, ``NA``, or
# ``UNREADABLE``; the lake side is turned into comparable numpy values by ``LAKE_VALUES``.


def _plain_number(text: str) -> str | None:
    t = text.strip()
    if not t or not t.isascii() or "_" in t or t.lower().lstrip("+-") in _NOT_NUMBERS:
        return None
    return t


def to_int(text: str) -> object:
    t = _plain_number(text)
    if t is None:
        return UNREADABLE
    try:
        value = int(t)
    except ValueError:
        try:
            number = float(t)
        except ValueError:
            return UNREADABLE
        if not number.is_integer():  # "12.0" and "1e3" are whole numbers, "11.5" is not
            return UNREADABLE
        value = int(number)
    return value if INT64[0] <= value <= INT64[1] else UNREADABLE


def to_float(text: str) -> object:
    t = _plain_number(text)
    if t is None:
        return UNREADABLE
    try:
        return float(t)
    except ValueError:
        return UNREADABLE


def to_bool(text: str) -> object:
    words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    return words.get(text.lower(), UNREADABLE)


def _iso(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def to_datetime_us(text: str) -> object:
    """Microseconds since the epoch, UTC; a time without a zone is taken as UTC."""
    moment = _iso(text)
    if moment is None:
        return UNREADABLE
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - EPOCH) // ONE_US


def to_date_us(text: str) -> object:
    """Midnight of the date as written (a time's own wall-clock date), in microseconds."""
    moment = _iso(text)
    if moment is None:
        return UNREADABLE
    day = dt.datetime.combine(moment.date(), dt.time(), tzinfo=dt.UTC)
    return (day - EPOCH) // ONE_US


CONVERT: dict[str, Callable[[str], object]] = {
    "int": to_int,
    "float": to_float,
    "string": lambda text: text,
    "bool": to_bool,
    "datetime": to_datetime_us,
    "date": to_date_us,
}


def _lake_times(values: pd.Series) -> np.ndarray:
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[us]").to_numpy().view("int64")


def _lake_objects(values: pd.Series) -> np.ndarray:
    # pd.NA does not compare to a bool: missing values become None (never equal to a value).
    out = values.astype(object).to_numpy(copy=True)
    out[values.isna().to_numpy()] = None
    return out


LAKE_VALUES: dict[str, Callable[[pd.Series], np.ndarray]] = {
    "int": _lake_objects,
    "float": lambda v: v.astype("float64").to_numpy(),
    "string": _lake_objects,
    "bool": _lake_objects,
    "datetime": _lake_times,
    "date": _lake_times,
}


def expected_values(kind: str, texts: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the lake must hold for each source text: values, missing mask, unreadable mask.

    Each distinct text is converted once (sources repeat their values a lot).
    """
    codes, distinct = pd.factorize(texts.to_numpy(dtype=object), use_na_sentinel=True)
    converted = np.empty(len(distinct) + 1, dtype=object)  # the last slot: missing (code -1)
    converted[:-1] = [CONVERT[kind](t) for t in distinct]
    values = converted[codes]
    missing = codes == -1
    unreadable = np.array([v is UNREADABLE for v in converted], dtype=bool)[codes]
    return values, missing, unreadable


def equal_to_source(kind: str, texts: pd.Series, lake: pd.Series) -> np.ndarray:
    """Per row: does the lake value equal what the source text means for ``kind``?

    A missing text matches only a missing lake value; an unreadable text matches nothing.
    """
    want, want_missing, unreadable = expected_values(kind, texts)
    lake_missing = lake.isna().to_numpy()
    got = LAKE_VALUES[kind](lake).astype(object)
    present = ~want_missing & ~unreadable & ~lake_missing
    same = np.zeros(len(want), dtype=bool)
    same[present] = np.asarray(want[present] == got[present], dtype=bool)
    return np.where(want_missing, lake_missing, same)
