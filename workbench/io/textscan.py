"""Where the lines and blocks of a delimited text file start, found in one streaming pass.

A big file is read by many tasks, each taking one block of bytes that starts at the beginning of
a line and knows that line's number, so ``_line`` stays the file's own line number and a task's
memory follows the block size, not the file size. Line ends are ``\\n``, ``\\r\\n`` or a lone
``\\r`` (old Mac files). A block boundary is put only where the quotes seen so far are balanced,
so a quoted field that holds a line break is not cut in two by a block. Compressed files (.zip,
.gz) are scanned and read through a decompressing stream; their blocks are offsets into the
decompressed text, and a .gz keeps seek points so that a block is read without inflating the
text before it (:mod:`workbench.io.gzseek`).
"""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from workbench import config
from workbench.io.gzseek import open_gzip

CHUNK = 8 << 20
# The header is read in small pieces: one CHUNK of a .zip costs 40 ms of inflating.
HEADER_CHUNK = 64 << 10
BOM = b"\xef\xbb\xbf"
NL, CR, QUOTE = 10, 13, 34
# A file whose quotes never balance again still gets line starts recorded, past this many times
# their spacing, so one stray quote cannot make a 7 GB file a single task.
MAX_BLOCK_STRETCH = 4
# Landing records a line start every block / GRAIN bytes; a read groups them into blocks of
# about the block size, or into smaller ones so that a file under two blocks (the 30 MB
# flights file) is still read by every core, not by one.
GRAIN = 4


@dataclass(frozen=True)
class TextScan:
    """Data rows (non-empty lines after the header), block starts and the text's size."""

    rows: int
    blocks: tuple[tuple[int, int], ...]  # (byte offset in the text, number of the line there)
    size: int

    def grouped(self, block_bytes: int, at_least: int = 1) -> TextScan:
        """The same text in ``max(ceil(size / block_bytes), at_least)`` blocks, as far as the
        recorded line starts allow: at each even cut, the recorded start nearest to it that
        is after the previous cut and leaves one for each cut still to make."""
        want = max(-(-self.size // max(int(block_bytes), 1)), at_least)
        if want >= len(self.blocks):
            return self
        starts = np.array([offset for offset, _ in self.blocks])
        picked = [0]
        for k in range(1, want):
            nearest = int(np.abs(starts - k * self.size / want).argmin())
            picked.append(min(max(nearest, picked[-1] + 1), len(starts) - (want - k)))
        return TextScan(self.rows, tuple(self.blocks[i] for i in picked), self.size)

    def spans(self) -> list[tuple[int, int, int]]:
        """(start, stop, first line) of each block."""
        stops = [b[0] for b in self.blocks[1:]] + [self.size]
        return [(s, e, line) for (s, line), e in zip(self.blocks, stops, strict=True)]


def is_compressed(path: Path) -> bool:
    return path.suffix in (".zip", ".gz")


def iter_text(
    path: Path, start: int = 0, stop: int | None = None, chunk: int = CHUNK
) -> Iterator[bytes]:
    """The decompressed bytes of ``path`` from ``start`` to ``stop``, in chunks.

    A .gz is entered at the last seek point before ``start`` that landing kept
    (:mod:`workbench.io.gzseek`). A .zip yields its members one after the other; its text
    cannot be entered in the middle, so a block of it is reached by reading and dropping what
    comes before.
    """
    if path.suffix == ".zip":
        yield from _bounded(_zip_text(path, chunk), start, stop)
        return
    with _open_text(path, seek=start > 0) as f:
        f.seek(start)
        chunks = iter(lambda: f.read(chunk), b"")
        yield from _bounded(chunks, 0, None if stop is None else stop - start)


def _open_text(path: Path, *, seek: bool) -> BinaryIO:
    if path.suffix != ".gz":
        return path.open("rb")
    if not seek:  # reading from the start needs no seek points: not even to load them
        return gzip.open(path, "rb")
    return open_gzip(path)


def _zip_text(path: Path, chunk: int) -> Iterator[bytes]:
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith("/"):
                with z.open(name) as f:
                    yield from iter(lambda f=f: f.read(chunk), b"")


def _bounded(chunks: Iterator[bytes], start: int, stop: int | None) -> Iterator[bytes]:
    pos = 0
    for chunk in chunks:
        lo, hi = max(start - pos, 0), len(chunk) if stop is None else min(stop - pos, len(chunk))
        pos += len(chunk)
        if hi > lo:
            yield chunk[lo:hi]
        if stop is not None and pos >= stop:
            return


def read_range(path: Path, start: int, stop: int) -> bytes:
    if not is_compressed(path):  # one read, no chunks to join
        with path.open("rb") as f:
            f.seek(start)
            return f.read(stop - start)
    return b"".join(iter_text(path, start, stop))


def scan_text(path: Path, block_bytes: int) -> TextScan:
    """Count the data rows of ``path`` and record line starts ``block_bytes / GRAIN`` apart,
    in one pass (:func:`read_plan` groups them into blocks)."""
    scanner = _Scanner(max(int(block_bytes) // GRAIN, 1))
    carry = b""
    for chunk in iter_text(path):
        data = carry + chunk
        # A \r at the end of a chunk may be the first half of \r\n: decide with the next chunk.
        data, carry = (data[:-1], b"\r") if data.endswith(b"\r") else (data, b"")
        scanner.feed(data)
    scanner.feed(carry)
    return scanner.finish()


def read_plan(scan: TextScan, files: int, tasks: int) -> TextScan:
    """The blocks one of a batch's ``files`` is read in: about ``workbench.block-bytes`` each,
    cut finer so that the batch makes at least ``tasks`` blocks in all (the cluster's threads:
    one 30 MB file would otherwise keep one core busy and leave the others idle)."""
    return scan.grouped(config.get("block-bytes"), -(-tasks // max(files, 1)))


def header_line(path: Path) -> bytes:
    """The first non-empty line of the text (the header), without its BOM or line end."""
    text = body = b""
    for chunk in iter_text(path, chunk=HEADER_CHUNK):
        text += chunk
        body = (text[len(BOM) :] if text.startswith(BOM) else text).lstrip(b"\r\n")
        ends = [i for i in (body.find(b"\n"), body.find(b"\r")) if i >= 0]
        if ends:
            return body[: min(ends)]
    return body


def _line_ends(raw: np.ndarray, *, has_cr: bool) -> tuple[np.ndarray, np.ndarray | int]:
    """Positions of line ends (\\n, or a \\r not followed by \\n) and, per end, 1 where it is
    the \\n of a \\r\\n (that \\r is not content)."""
    nl = raw == NL
    if not has_cr:  # most files: one comparison, no look-around
        return np.flatnonzero(nl), 0
    cr = raw == CR
    lone_cr = cr.copy()
    lone_cr[:-1] &= ~nl[1:]
    ends = np.flatnonzero(nl | lone_cr)
    return ends, nl[ends] & (ends > 0) & cr[np.maximum(ends - 1, 0)]


class _Scanner:
    """State carried between chunks: lines ended, non-empty lines, quote parity, cuts."""

    def __init__(self, block_bytes: int) -> None:
        self.block_bytes = max(int(block_bytes), 1)
        self.pos = 0  # bytes fed so far
        self.lines_ended = 0
        self.non_empty = 0
        self.line_start = 0  # offset of the line not yet ended
        self.quotes = 0  # quote characters seen so far, modulo 2
        self.blocks: list[tuple[int, int]] = [(0, 1)]
        self.cut = self.block_bytes  # the next block starts at the first line end past this

    def feed(self, data: bytes) -> None:
        if not data:
            return
        raw = np.frombuffer(data, dtype=np.uint8)
        ends, crlf = _line_ends(raw, has_cr=b"\r" in data)
        if len(ends):
            starts = np.concatenate([[self.line_start - self.pos], ends[:-1] + 1])
            self.non_empty += int(np.count_nonzero(ends - starts - crlf > 0))
        # Quote positions matter only where a block may start; elsewhere bytes.count is enough.
        if len(ends) and self.pos + len(data) > self.cut:
            quotes = np.flatnonzero(raw == QUOTE)
            self._cut_blocks(ends, quotes)
            self.quotes = (self.quotes + len(quotes)) % 2
        else:
            self.quotes = (self.quotes + data.count(b'"')) % 2
        self.lines_ended += len(ends)
        if len(ends):
            self.line_start = self.pos + int(ends[-1]) + 1
        self.pos += len(data)

    def _cut_blocks(self, ends: np.ndarray, quotes: np.ndarray) -> None:
        balanced = (self.quotes + np.searchsorted(quotes, ends)) % 2 == 0
        while True:
            after = self.pos + ends + 1 >= self.cut
            stretched = self.pos + ends + 1 >= self.cut + MAX_BLOCK_STRETCH * self.block_bytes
            hits = np.flatnonzero(after & (balanced | stretched))
            if not len(hits):
                return
            k = int(hits[0])
            start = self.pos + int(ends[k]) + 1
            self.blocks.append((start, self.lines_ended + k + 2))
            self.cut = start + self.block_bytes

    def finish(self) -> TextScan:
        if self.pos > self.line_start:  # a last line without a line end
            self.non_empty += 1
        blocks = [b for b in self.blocks if b[0] < self.pos or b[0] == 0]
        return TextScan(max(self.non_empty - 1, 0), tuple(blocks), self.pos)
