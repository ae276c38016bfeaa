"""Where a lake version's rows are, for `lake verify`: Parquet row groups and their ranges.

A verify task reads only the row groups of the lake and quarantine versions that may hold its
block's lines (by the batch, file and line ranges of their statistics), and the rows per
landed file come from those statistics where a row group holds one file's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import pyarrow.parquet as pq

from workbench.zones.promote_rows import BATCH_COLUMN

# The lineage columns, named here rather than imported from the reading code verify checks.
FILE_COLUMN, LINE_COLUMN = "_file", "_line"


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a table version, with the ranges its statistics give (None:
    no statistics, so it may hold anything)."""

    path: str
    index: int
    rows: int
    batch: tuple[str, str] | None
    file: tuple[str, str] | None
    line: tuple[int, int] | None

    def may_hold(self, batch: str, name: str, lo: int | None, hi: int | None) -> bool:
        inside = _within(batch, self.batch) and _within(name, self.file)
        if not inside or self.line is None:
            return inside
        return (lo is None or self.line[1] >= lo) and (hi is None or self.line[0] < hi)

    @property
    def single(self) -> tuple[str, str] | None:
        """(batch, file) when every row of the group has the same ones."""
        if self.batch and self.file and self.batch[0] == self.batch[1]:
            return (self.batch[0], self.file[0]) if self.file[0] == self.file[1] else None
        return None


def _within(value: str, bounds: tuple[str, str] | None) -> bool:
    return bounds is None or bounds[0] <= value <= bounds[1]


def row_groups(uris: list[str]) -> list[RowGroup]:
    """The row groups of a table version, from the Parquet footers (no data read)."""
    out = []
    for uri in uris:
        path = uri.removeprefix("file://")
        meta = pq.ParquetFile(path).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            bounds = {n: _bounds(group.column(i).statistics) for i, n in enumerate(names)}
            out.append(
                RowGroup(path, g, group.num_rows, bounds.get(BATCH_COLUMN),
                         bounds.get(FILE_COLUMN), bounds.get(LINE_COLUMN))
            )  # fmt: skip
    return out


def _bounds(stats) -> tuple | None:
    if stats is None or not stats.has_min_max:
        return None
    return (stats.min, stats.max)


def stored_counts(lake: list[RowGroup], held: list[RowGroup]) -> dict:
    """(batch, file) -> (lake rows, quarantined rows); from statistics where a row group holds
    one batch and file (promotion writes one block per file), else by reading two columns."""
    counts: dict = {}
    mixed = []
    for side, groups in enumerate((lake, held)):
        for group in groups:
            if group.single is not None:
                _add(counts, group.single, side, group.rows)
            else:
                mixed.append((side, group))
    read = dask.compute(*[dask.delayed(_pairs_in)(g) for _, g in mixed])
    for (side, _), pairs in zip(mixed, read, strict=True):
        for key, n in pairs.items():
            _add(counts, key, side, n)
    return dict(sorted(counts.items()))


def _add(counts: dict, key: tuple[str, str], side: int, n: int) -> None:
    pair = list(counts.get(key, (0, 0)))
    pair[side] += n
    counts[key] = tuple(pair)


def _pairs_in(group: RowGroup) -> dict[tuple[str, str], int]:
    table = pq.ParquetFile(group.path).read_row_group(group.index, [BATCH_COLUMN, FILE_COLUMN])
    grouped = table.group_by([BATCH_COLUMN, FILE_COLUMN]).aggregate([([], "count_all")])
    rows = grouped.to_pylist()
    return {(r[BATCH_COLUMN], r[FILE_COLUMN]): r["count_all"] for r in rows}
