"""The reference reader `lake verify` compares the lake against: one block of a landed file.

It calls nothing of the promotion path (``io/textscan.py``, ``io/csvfile.py``,
``validation/rules.py``): bytes are read and decompressed here (a .gz of many blocks entered
through indexed_gzip, ``io/gzseek.py``, at seek points this verify recorded from the landed
file), line ends are found and counted with numpy here, fields are split by pyarrow's CSV reader
called directly (every column as text), and the few lines that reader cannot take go through the
standard library's ``csv`` module one by one. Typing the text is done in SQL by
:mod:`workbench.zones.reference_types`.

The meaning of a file is the one the catalog documents: line ends are ``\\n``, ``\\r\\n`` or a
lone ``\\r``; the first non-empty line is the header (a UTF-8 BOM is not part of it); each other
non-empty line is one row. Fields are read as written; which texts mean "missing" (a column's
``na_values``, else the source's, quoted or not) is applied when the values are typed, as the
lake does, while quarantined rows keep the text.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from workbench.io.gzseek import open_gzip

NL, CR, QUOTE = 10, 13, 34
BOM = b"\xef\xbb\xbf"
CHUNK = 8 << 20
UNSPLIT = "_unsplit"  # why a line has no fields: encoding, quoting, field_count


# --- bytes ------------------------------------------------------------------------------------


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's text: a .gz inflated, a .zip's members one after the other, else as is."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            yield from iter(lambda: f.read(CHUNK), b"")
    elif path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.is_dir():
                    with archive.open(member) as f:
                        yield from iter(lambda f=f: f.read(CHUNK), b"")
    else:
        with path.open("rb") as f:
            yield from iter(lambda: f.read(CHUNK), b"")


def text_range(path: Path, start: int, stop: int | None, points: str | None = None) -> bytes:
    """Bytes ``start`` to ``stop`` (``None``: the end) of the file's text; a .gz is entered at
    the seek ``points`` given (recorded by this verify from the landed file, never those landing
    kept), else inflated from its start."""
    if not path.name.endswith((".gz", ".zip")) or points is not None:
        with _seekable(path, points) as f:
            f.seek(start)
            return f.read() if stop is None else f.read(stop - start)
    out, pos = [], 0
    for chunk in _chunks(path):  # compressed text cannot be entered in the middle
        lo, hi = max(start - pos, 0), len(chunk) if stop is None else min(stop - pos, len(chunk))
        pos += len(chunk)
        if hi > lo:
            out.append(chunk[lo:hi])
        if stop is not None and pos >= stop:
            break
    return b"".join(out)


def _seekable(path: Path, points: str | None) -> BinaryIO:
    return path.open("rb") if points is None else open_gzip(path, Path(points))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def header_text(path: Path) -> bytes:
    """The first non-empty line of the text, without its line end or a BOM."""
    seen = b""
    for chunk in _chunks(path):
        seen = (seen + chunk).removeprefix(BOM) if not seen else seen + chunk
        for line in seen.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")[:-1]:
            if line:
                return line
    return seen.strip(b"\r\n")


# --- lines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockLines:
    """The lines of one block: ``data`` has every lone CR made a LF (same length); per
    non-empty line its byte range (without the line end) and its number in the file."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    numbers: np.ndarray
    line_ends: int  # LF, CRLF and lone CR each count once
    aligned: bool  # the block starts at the beginning of a line

    def text(self, i: int) -> str:
        return self.data[self.starts[i] : self.ends[i]].decode("utf-8", errors="replace")


def block_lines(
    path: Path, start: int, stop: int | None, first_line: int, points: str | None = None
) -> BlockLines:
    """Read one block (one byte either side, to see its edges) and find its lines."""
    lead = 1 if start > 0 else 0
    raw = text_range(path, start - lead, None if stop is None else stop + 1, points)
    before = raw[:lead]
    body_end = len(raw) if stop is None else min(len(raw), lead + stop - start)
    after = raw[body_end : body_end + 1]
    arr = np.frombuffer(raw, dtype=np.uint8)[lead:body_end]
    aligned = start == 0 or (before in (b"\n", b"\r") and not (before == b"\r" and arr[:1] == NL))
    crs = np.flatnonzero(arr == CR)
    if len(crs):
        following = np.append(arr, np.frombuffer(after or b"\n", dtype=np.uint8)[:1])[crs + 1]
        lone = crs[following != NL]
        if len(lone):
            arr = arr.copy()
            arr[lone] = NL
    skip = len(BOM) if start == 0 and arr[:3].tobytes() == BOM else 0
    ends = np.flatnonzero(arr == NL)
    starts = np.concatenate([[skip], ends + 1])
    stops = np.append(ends, len(arr))
    if starts[-1] >= len(arr):  # nothing after the last line end
        starts, stops = starts[:-1], stops[:-1]
    content_end = stops - ((stops > starts) & (arr[np.maximum(stops - 1, 0)] == CR))
    keep = content_end > starts
    return BlockLines(
        data=arr.tobytes(),
        starts=starts[keep],
        ends=content_end[keep],
        numbers=(first_line + np.arange(len(starts)))[keep],
        line_ends=len(ends),
        aligned=bool(aligned),
    )


# --- fields -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadOptions:
    header: list[str]
    columns: list[str]
    na_values: tuple[str, ...]
    delimiter: str


def source_table(lines: BlockLines, first_is_header: bool, opts: ReadOptions) -> pa.Table:
    """One row per data line: ``_line``, every declared column as text, and ``_unsplit``."""
    first = 1 if first_is_header else 0
    index = np.arange(first, len(lines.numbers))
    aside = _odd_quotes(lines, index)
    try:
        table = _pyarrow_rows(lines, index[~aside], opts)
    except (pa.ArrowInvalid, UnicodeDecodeError):  # bytes that are not UTF-8 fail the block
        aside |= _undecodable(lines, index)
        try:
            table = _pyarrow_rows(lines, index[~aside], opts)
        except (pa.ArrowInvalid, UnicodeDecodeError):  # the reader and the line model disagree
            aside[:] = True
            table = _pyarrow_rows(lines, index[:0], opts)
    if not aside.any():
        return table
    out = pa.concat_tables([table, _stdlib_rows(lines, index[aside], opts)])
    return out.take(pc.sort_indices(out, [("_line", "ascending")]))


def _odd_quotes(lines: BlockLines, index: np.ndarray) -> np.ndarray:
    """Lines with an odd number of quotes: pyarrow would let a quoted field swallow the lines
    after them, so they are set aside for the line by line path."""
    quotes = np.flatnonzero(np.frombuffer(lines.data, dtype=np.uint8) == QUOTE)
    starts, ends = lines.starts[index], lines.ends[index]
    count = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)
    return (count % 2).astype(bool)


def _undecodable(lines: BlockLines, index: np.ndarray) -> np.ndarray:
    """Which lines of ``index`` are not valid UTF-8: only lines with a non-ASCII byte are
    decoded, one by one."""
    high = np.flatnonzero(np.frombuffer(lines.data, dtype=np.uint8) >= 0x80)
    starts, ends = lines.starts[index], lines.ends[index]
    suspect = np.flatnonzero(np.searchsorted(high, ends) > np.searchsorted(high, starts))
    bad = np.zeros(len(index), dtype=bool)
    for i in suspect:
        try:
            lines.data[starts[i] : ends[i]].decode("utf-8")
        except UnicodeDecodeError:
            bad[i] = True
    return bad


def _pyarrow_rows(lines: BlockLines, index: np.ndarray, opts: ReadOptions) -> pa.Table:
    """Rows of the lines ``index`` through pyarrow; a line with the wrong number of fields comes
    back unsplit (``field_count``)."""
    if len(index) == 0:
        return _shaped({}, np.zeros(0, np.int64), None, opts)
    body = _joined_lines(lines, index)
    rejected: list[tuple[int, str]] = []

    def keep_bad(row: pv.InvalidRow) -> str:
        rejected.append((row.number, row.text))
        return "skip"

    names = _unique(opts.header)
    table = pv.read_csv(
        io.BytesIO(body),
        read_options=pv.ReadOptions(use_threads=False, column_names=names),
        parse_options=pv.ParseOptions(delimiter=opts.delimiter, invalid_row_handler=keep_bad),
        convert_options=pv.ConvertOptions(
            column_types={c: pa.string() for c in names},
            null_values=list(opts.na_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    if table.num_rows + len(rejected) != len(index):
        raise pa.ArrowInvalid("rows and lines do not match")
    bad = np.array([n - 1 for n, _ in rejected], dtype=np.int64)  # rows numbered from 1
    if any(lines.text(index[b]) != text for b, (_, text) in zip(bad, rejected, strict=True)):
        raise pa.ArrowInvalid("rejected rows are not the lines expected")
    good = _shaped(table, lines.numbers[np.delete(index, bad)], None, opts)
    if not len(bad):
        return good
    return pa.concat_tables([good, _unsplit(lines.numbers[index[bad]], "field_count", opts)])


def _joined_lines(lines: BlockLines, index: np.ndarray) -> bytes:
    """The lines ``index`` as one text; the block's own bytes when it holds all its lines
    (empty lines in between are skipped by pyarrow too)."""
    every = len(index) == len(lines.numbers) - int(index[0]) and index[-1] == len(lines.numbers) - 1
    if every:
        return lines.data[lines.starts[index[0]] :]
    starts, ends = lines.starts[index], lines.ends[index]
    return b"\n".join(lines.data[s:e] for s, e in zip(starts, ends, strict=True))


def _stdlib_rows(lines: BlockLines, index: np.ndarray, opts: ReadOptions) -> pa.Table:
    """The set-aside lines, one by one with the ``csv`` module (strict)."""
    fields, numbers, reasons = [], [], []
    for i in index:
        split = _split_line(lines.data[lines.starts[i] : lines.ends[i]], opts)
        numbers.append(lines.numbers[i])
        fields.append(split if isinstance(split, list) else None)
        reasons.append(split if isinstance(split, str) else None)
    names = _unique(opts.header)
    columns = {
        name: pa.array([f[k] if f else None for f in fields], pa.string())
        for k, name in enumerate(names)
    }
    return _shaped(columns, np.asarray(numbers, dtype=np.int64), reasons, opts)


def _split_line(raw: bytes, opts: ReadOptions) -> list | str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "encoding"
    try:
        fields = next(csv.reader([text], delimiter=opts.delimiter, strict=True))
    except csv.Error:
        return "quoting"
    if len(fields) != len(opts.header):
        return "field_count"
    if set(opts.na_values).isdisjoint(fields):
        return fields
    quoted = _quoted(text, opts.delimiter)
    return [
        None if f in opts.na_values and not q else f for f, q in zip(fields, quoted, strict=False)
    ]


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


def _unsplit(numbers: np.ndarray, reason: str, opts: ReadOptions) -> pa.Table:
    return _shaped({}, numbers, [reason] * len(numbers), opts)


def _shaped(columns, numbers: np.ndarray, reasons: list | None, opts: ReadOptions) -> pa.Table:
    """``_line``, the declared columns (text; absent from the header: missing), ``_unsplit``."""
    n = len(numbers)
    have = set(columns.column_names) if isinstance(columns, pa.Table) else set(columns)
    data = {"_line": pa.array(numbers, pa.int64())}
    for column in opts.columns:
        data[column] = columns[column] if column in have else pa.nulls(n, pa.string())
    data[UNSPLIT] = pa.nulls(n, pa.string()) if reasons is None else pa.array(reasons, pa.string())
    return pa.table(data)


def _unique(names: list[str]) -> list[str]:
    """Header names made unique (a repeated name gets a suffix; the first keeps the name)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}\x00{seen[name]}")
    return out


def parse_header(line: bytes, delimiter: str) -> list[str]:
    text = line.decode("utf-8", errors="replace")
    return next(csv.reader([text], delimiter=delimiter), []) if text else []
