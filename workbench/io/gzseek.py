"""Seek points of a gzip file, so a block of its text is read without inflating all before it.

Deflate cannot start in the middle of a stream unless the 32 KiB of text before the starting
point is known. indexed_gzip (the zran method of zlib's examples) records such points, with
their windows, while the file is read once. Landing reads each file once anyway (copy, hash,
line scan): it keeps the points of a ``.gz`` beside the landed file, and a block's task then
starts inflating at the last point before its block. Without them, block k of a file inflates
the k blocks before it: a 7.6 GB file in 230 blocks would be inflated 115 times over.

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


def open_gzip(path: Path, spacing: int) -> BinaryIO:
    """The text of ``path``, seekable: from its saved seek points when there are, else
    recording points every ``spacing`` bytes of text (at least ``MIN_SPACING``) as it is read."""
    points = seek_points_path(path)
    return indexed_gzip.IndexedGzipFile(
        str(path),
        spacing=max(int(spacing), MIN_SPACING),
        index_file=str(points) if points.exists() else None,
    )


def save_seek_points(text: BinaryIO, path: Path) -> None:
    """Keep the points ``text`` (from :func:`open_gzip`, read to its end) recorded."""
    text.export_index(str(seek_points_path(path)))
