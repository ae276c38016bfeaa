"""Seek points of a gzip file, so a block of its text is read without inflating all before it.

Deflate cannot start in the middle of a stream unless the 32 KiB of text before the starting
point is known. indexed_gzip (the zran method of zlib's examples) records such points, with
their windows, in one pass over the file. Landing makes them for a ``.gz`` and keeps them
beside the landed file; a block's task then starts inflating at the last point before its
block. Without them, block k of a file inflates the k blocks before it: a 7.6 GB file in 230
blocks would be inflated 115 times over.

A ``.zip`` member has no such library here (zran needs a gzip or zlib stream); its blocks are
still reached by inflating what comes before them.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import indexed_gzip

# Each point keeps a 32 KiB window of text: points closer than this would cost more to keep than
# the inflating they save (and zran refuses a spacing under its window).
MIN_SPACING = 1 << 20


def seek_points_path(path: Path) -> Path:
    """Where the seek points of a landed ``.gz`` are kept: a hidden file beside it."""
    return path.with_name(f".{path.name}.seekpoints")


def open_gzip(path: Path, points: Path | None = None) -> BinaryIO:
    """The text of ``path``, seekable from ``points`` (default: those kept beside it; none
    there: every seek inflates from the start)."""
    points = seek_points_path(path) if points is None else points
    return indexed_gzip.IndexedGzipFile(
        str(path), index_file=str(points) if points.exists() else None
    )


def record_seek_points(path: Path, spacing: int, out: Path | None = None) -> Path:
    """Record seek points every ``spacing`` bytes of text (at least ``MIN_SPACING``) in one
    pass over ``path`` into ``out`` (default: beside it, where :func:`open_gzip` looks).

    The index is built whole, in a pass of its own: points recorded while reading the file
    for another purpose were found missing (indexed_gzip 1.10.3 recorded none in a 14.6 MB
    file at a 4 MiB spacing, and all of them when building the index whole).
    """
    out = seek_points_path(path) if out is None else out
    with indexed_gzip.IndexedGzipFile(str(path), spacing=max(int(spacing), MIN_SPACING)) as f:
        f.build_full_index()
        f.export_index(str(out))
    return out
