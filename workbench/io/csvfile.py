"""Read delimited text without losing a line: every row comes back, parsed or not.

A file is read in blocks (see :mod:`workbench.io.textscan`): each block starts at the beginning
of a line, knows that line's number, and is parsed by pyarrow's CSV reader with every column as
text, the file's header put in front of it. Rows pyarrow rejects (wrong number of fields) come
back with their original text and a reason instead of values. A block that is not valid UTF-8
or has a quote that never closes makes pyarrow give up on the whole block; such a block goes
through a slower line by line path, so one bad line costs one row, not the batch. Line numbers
are the file's own (1 is the header), so a person can find any row in the original. A UTF-8 BOM
is not part of the first column's name, and lone ``\r`` line ends are read as line ends.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv

from workbench.io.textscan import BOM, header_line, read_range

LINE, FILE, PARSE_ERROR, TEXT = "_line", "_file", "_parse_error", "_text"
# Columns are parsed as large_string, the buffer layout of pandas' "str": to_pandas then shares
# the buffers instead of converting every column (40 ms for the flights file).
_TEXT_TYPE = pa.large_string()
_AS_STR = {_TEXT_TYPE: pd.StringDtype("pyarrow", np.nan)}.get


def text_meta(columns: list[str]) -> pd.DataFrame:
    meta = {c: pd.Series([], dtype="str") for c in columns}
    meta[LINE] = pd.Series([], dtype="int64")
    meta[FILE] = pd.Series([], dtype="str")
    meta[PARSE_ERROR] = pd.Series([], dtype="str")
    meta[TEXT] = pd.Series([], dtype="str")
    return pd.DataFrame(meta)


def read_block(
    path: Path,
    name: str,
    span: tuple[int, int, int],
    columns: list[str],
    na_values: tuple[str, ...],
    delimiter: str = ",",
) -> pd.DataFrame:
    """Rows of one block of a file as text: declared columns, line, file, parse error, text.

    ``span`` is (start, stop, first line) from :meth:`TextScan.spans`; ``name`` is what the
    ``_file`` column says (the file's path inside its landed batch).
    """
    start, stop, first_line = span
    data = read_range(path, start, stop)
    if b"\r" in data:  # most files have none: no need to copy 32 MiB through the regex
        data = _lone_cr.sub(b"\n", data)
    if start == 0:
        data = data.removeprefix(BOM)
        shift = first_line - 1
    else:  # the header goes in front, so the block's first line is its line 2
        data = header_line(path) + b"\n" + data
        shift = first_line - 2
    frame = parse_text(data, columns, na_values, delimiter, name)
    frame[LINE] = frame[LINE].to_numpy() + shift
    return frame


# A \r not followed by \n ends a line; made \n (same length) so both parsers see it.
_lone_cr = re.compile(rb"\r(?!\n)")


def parse_text(
    data: bytes, columns: list[str], na_values: tuple[str, ...], delimiter: str, name: str = ""
) -> pd.DataFrame:
    """Every row of ``data`` (header first) as text, with line numbers counted within it and
    ``name`` as its file."""
    lines = non_empty_lines(data)
    if len(lines) == 0:
        return text_meta(columns)
    try:
        _check_utf8(data)
        header, frame, problems = _parse_lines(data, lines, na_values, delimiter)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        header, frame, problems = _slow_parse(data, lines, na_values, delimiter)
    frame = _conform(frame, header, columns)
    if problems:
        bad = pd.DataFrame(
            {
                LINE: [p[0] for p in problems],
                TEXT: [p[1] for p in problems],
                PARSE_ERROR: [p[2] for p in problems],
            }
        )
        frame = pd.concat([frame, bad.astype({TEXT: "str", PARSE_ERROR: "str"})], ignore_index=True)
        # Only rejected rows come out of line order; sorting takes every column apart.
        frame = frame.sort_values(LINE, kind="stable", ignore_index=True)
    frame[FILE] = _constant_text(name, len(frame))
    meta = text_meta(columns)
    frame = frame[list(meta.columns)]
    differ = {c: t for c, t in meta.dtypes.items() if frame[c].dtype != t}
    return frame.astype(differ) if differ else frame


def _parse_lines(data: bytes, lines: np.ndarray, na_values: tuple[str, ...], delimiter: str):
    """Parse with pyarrow; ``lines`` are the file's numbers of the non-empty lines of ``data``."""
    table, rejected = _fast_parse(data, na_values, delimiter)
    if table.num_rows + len(rejected) != len(lines) - 1:
        # A quote that never closes swallows line ends: one rejected "row" spans several
        # lines. Only the line by line path can say which line holds the problem.
        raise pa.ArrowInvalid("rows do not match lines")
    # pyarrow counts non-empty rows with the header as row 1: map them to file lines.
    bad_rows = np.array([n - 1 for n, _ in rejected], dtype=np.int64)
    good = np.delete(lines, np.concatenate([[0], bad_rows]))
    # One chunk per column: Arrow parses in 1 MiB chunks, and every later take, cast and write
    # of a column of 30 chunks costs more than this one copy.
    frame = table.combine_chunks().to_pandas(types_mapper=_AS_STR)
    frame[LINE] = good[: len(frame)]
    problems = [(int(lines[n - 1]), text, "parse:field_count") for n, text in rejected]
    return table.column_names, frame, problems


def _check_utf8(data: bytes) -> None:
    # pyarrow's rejected-row callback itself fails on undecodable text: route such files to the
    # line by line path before pyarrow sees them.
    data.decode("utf-8")


def non_empty_lines(data: bytes) -> np.ndarray:
    """1-based numbers of the non-empty lines (header included), vectorised over the bytes."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(raw == ord("\n"))
    if len(raw) and raw[-1] != ord("\n"):
        ends = np.append(ends, len(raw))
    starts = np.concatenate([[0], ends[:-1] + 1])
    length = ends - starts
    # A line holding only "\r" is empty too (Windows line endings).
    only_cr = (length == 1) & (raw[np.minimum(starts, len(raw) - 1)] == ord("\r"))
    return np.flatnonzero((length > 0) & ~only_cr) + 1


def _fast_parse(data: bytes, na_values: tuple[str, ...], delimiter: str):
    # Arrow's threads parse a block's chunks on the cores its task leaves idle (a one-block
    # file is one task), but then cannot number the rows it rejects: a block with a bad row
    # is parsed again on one thread, for the line numbers.
    table, rejected = _arrow_parse(data, na_values, delimiter, threads=True)
    if any(number is None for number, _ in rejected):
        table, rejected = _arrow_parse(data, na_values, delimiter, threads=False)
    return table, rejected


def _arrow_parse(data: bytes, na_values: tuple[str, ...], delimiter: str, *, threads: bool):
    rejected: list[tuple[int | None, str]] = []

    def keep_bad(row: pv.InvalidRow) -> str:
        rejected.append((row.number, row.text))
        return "skip"

    table = pv.read_csv(
        io.BytesIO(data),
        read_options=pv.ReadOptions(use_threads=threads),
        parse_options=pv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_bad),
        convert_options=pv.ConvertOptions(
            column_types=_all_text(data, delimiter),
            null_values=list(na_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, rejected


def _all_text(data: bytes, delimiter: str) -> dict[str, pa.DataType]:
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8").rstrip("\r")
    names = next(csv.reader([first], delimiter=delimiter))
    return {name: _TEXT_TYPE for name in names}


def _slow_parse(data: bytes, lines: np.ndarray, na_values: tuple[str, ...], delimiter: str):
    """For files pyarrow refuses whole (bad encoding, unbalanced quotes): such lines are set
    aside one by one, and the rest goes through the same pyarrow parse as any file, so a
    value's meaning (a quoted "NA" is text) does not depend on a bad line elsewhere."""
    texts = data.split(b"\n")
    header = texts[lines[0] - 1].rstrip(b"\r").decode("utf-8", errors="replace").encode()
    kept, problems = [lines[0]], []
    for number in lines[1:]:
        raw = texts[number - 1].rstrip(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append((int(number), raw.decode("utf-8", errors="replace"), "parse:encoding"))
            continue
        try:
            next(csv.reader([text], delimiter=delimiter, strict=True))
        except csv.Error:
            problems.append((int(number), text, "parse:quoting"))
            continue
        if "\r" in text:  # pyarrow ends a row at a bare CR, even inside quotes
            problems.append((int(number), text, "parse:quoting"))
            continue
        kept.append(number)
    body = b"\n".join([header, *(texts[n - 1].rstrip(b"\r") for n in kept[1:])])
    names, frame, rejected = _parse_lines(
        body, np.asarray(kept, dtype=np.int64), na_values, delimiter
    )
    return names, frame, problems + rejected


def _conform(frame: pd.DataFrame, header: list[str], columns: list[str]) -> pd.DataFrame:
    """Declared columns only; a declared column missing from the header fails every row."""
    missing = [c for c in columns if c not in header]
    for c in [*missing, TEXT]:
        frame[c] = _constant_text(None, len(frame))
    reason = ";".join(f"schema:missing_column:{c}" for c in missing)
    frame[PARSE_ERROR] = _constant_text(reason or None, len(frame))
    return frame[[*columns, LINE, PARSE_ERROR, TEXT]]


def _constant_text(value: str | None, rows: int) -> pd.api.extensions.ExtensionArray:
    """A "str" column holding one value (None: missing) on every row, filled by Arrow (pandas
    fills a scalar row by row, a few ms per column of a block)."""
    column = pa.repeat(pa.scalar(value, _TEXT_TYPE), rows)
    return pa.chunked_array([column], _TEXT_TYPE).to_pandas(types_mapper=_AS_STR).array


def read_header(path: Path, delimiter: str = ",") -> list[str]:
    """The column names in the first line of a file (through .zip and .gz, without a BOM)."""
    text = header_line(path).decode("utf-8", errors="replace")
    return next(csv.reader([text], delimiter=delimiter), []) if text else []
