"""`lake verify`: prove by content that the lake holds what the landed files say.

For every landed file of every batch the lake or the quarantine knows, one task re-reads the file
with the reference reader (``zones/reference.py``, no code shared with promotion) and reads that
file's rows back from the committed lake and quarantine tables. It then checks, line by line:

- every data line of a promoted batch is in the lake or in quarantine (``missing``), not in both
  (``in_both``), and at most once (``duplicated``); no row claims a line the file does not have
  (``extra``);
- every lake value equals the source field as the reference reader converts it (``values``);
- every quarantined row keeps the original text of its line (``quarantine_text``);
- the landed file still has the digest recorded when it landed (``landing_altered``).

Rows whose batch is no longer in landing (removed by retention) cannot be checked; they are
counted, not failed. Rows naming a file their batch never landed are failed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from workbench.catalog.models import Catalog, Dataset
from workbench.errors import CatalogError, DatasetNotFound
from workbench.io.csvfile import PARSE_ERROR, TEXT
from workbench.io.delta import open_table, read_table
from workbench.io.sources import FILE_COLUMN, LINE_COLUMN
from workbench.io.workspace import Workspace
from workbench.zones.landing import list_batches
from workbench.zones.promote import BATCH_COLUMN
from workbench.zones.reference import equal_to_source, file_bytes, file_sha256, source_lines
from workbench.zones.retention import promoted_batches

PROBLEM, RAW = "_problem", "_raw"
LINE_UNREADABLE = "(line)"  # the column name under which unsplittable lines are counted


@dataclass(frozen=True)
class Difference:
    """One line where the lake or quarantine disagrees with its source (a sample)."""

    kind: str
    batch_id: str
    file: str
    line: int
    column: str | None = None
    stored: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class FileCheck:
    """What verification found for one landed file of one batch."""

    batch_id: str
    file: str
    promoted_batch: bool
    lines: int
    in_lake: int
    quarantined: int
    missing: int = 0
    in_both: int = 0
    duplicated: int = 0
    extra: int = 0
    values: dict[str, int] = field(default_factory=dict)
    quarantine_text: int = 0
    landing_altered: bool = False

    @property
    def problems(self) -> int:
        counts = (self.missing, self.in_both, self.duplicated, self.extra, self.quarantine_text)
        return sum(counts) + sum(self.values.values()) + int(self.landing_altered)


@dataclass(frozen=True)
class Unchecked:
    """Stored rows of a (batch, file) that no landed file backs."""

    batch_id: str
    file: str
    in_lake: int
    quarantined: int
    reason: str  # "landing removed" (not a failure) or "not in the batch's manifest"


@dataclass(frozen=True)
class Verification:
    dataset: str
    lake_version: int
    quarantine_version: int | None
    files: tuple[FileCheck, ...]
    unchecked: tuple[Unchecked, ...]
    differences: tuple[Difference, ...]

    @property
    def rows_checked(self) -> int:
        return sum(f.in_lake + f.quarantined for f in self.files)

    @property
    def ok(self) -> bool:
        orphans = [u for u in self.unchecked if u.reason != "landing removed"]
        return not orphans and all(f.problems == 0 for f in self.files)

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok, "rows_checked": self.rows_checked}


@dataclass(frozen=True)
class FileTask:
    """Everything one task needs to check one landed file (shipped to a worker)."""

    batch_id: str
    path: str
    sha256: str
    promoted_batch: bool
    schema: dict[str, str]
    na_values: tuple[str, ...]
    delimiter: str
    lake_files: tuple[str, ...]
    quarantine_files: tuple[str, ...]
    samples: int


def verify_lake(catalog: Catalog, ws: Workspace, name: str, *, samples: int = 20) -> Verification:
    """Check the current lake and quarantine of ``name`` against its landed files.

    Examples
    --------
    >>> result = verify_lake(catalog, ws, "flights")  # doctest: +SKIP
    >>> result.ok, result.rows_checked                # doctest: +SKIP
    (True, 336776)
    """
    dataset = _lake_dataset(catalog, name)
    lake = open_table(ws.path("lake", name))
    q_path = ws.path("quarantine", name)
    quarantine = open_table(q_path) if q_path.exists() else None
    stored = _stored_counts(ws, name, quarantine is not None)
    in_lake = {b for b, _ in stored if stored[(b, _)][0]}
    promoted = in_lake if dataset.load == "replace" else in_lake | promoted_batches(ws, name)
    tasks, landed = [], {}
    for batch in list_batches(ws, name):
        landed[batch.batch_id] = {f.name for f in batch.files}
        if batch.batch_id not in promoted and not any(b == batch.batch_id for b, _ in stored):
            continue
        for landed_file, path in zip(batch.files, batch.paths(ws), strict=True):
            tasks.append(
                FileTask(
                    batch.batch_id,
                    str(path),
                    landed_file.sha256,
                    batch.batch_id in promoted,
                    dict(dataset.schema_),
                    tuple(dataset.source.na_values),
                    dataset.source.delimiter,
                    tuple(lake.file_uris()),
                    tuple(quarantine.file_uris()) if quarantine is not None else (),
                    samples,
                )
            )
    outcomes = dask.compute(*[dask.delayed(check_file, pure=False)(t) for t in tasks])
    return Verification(
        dataset=name,
        lake_version=lake.version(),
        quarantine_version=quarantine.version() if quarantine is not None else None,
        files=tuple(o[0] for o in outcomes),
        unchecked=_unchecked(stored, landed),
        differences=tuple(d for o in outcomes for d in o[1])[:samples],
    )


def _lake_dataset(catalog: Catalog, name: str) -> Dataset:
    if name not in catalog.datasets:
        known = ", ".join(catalog.datasets)
        raise DatasetNotFound(f"no dataset named {name!r} in the catalog (known: {known})")
    dataset = catalog.datasets[name]
    if dataset.zone != "lake":
        lakes = ", ".join(n for n, d in catalog.datasets.items() if d.zone == "lake")
        raise CatalogError(
            f"{name} is a curated table (datasets.{name}.zone: {dataset.zone}); `lake verify` "
            f"checks lake tables against their landed files: one of {lakes}."
        )
    return dataset


def _stored_counts(ws: Workspace, name: str, has_quarantine: bool) -> dict:
    """(batch, file) -> (lake rows, quarantined rows) in the current versions."""
    keys = [BATCH_COLUMN, FILE_COLUMN]
    frames = [read_table(ws.path("lake", name), columns=keys)]
    if has_quarantine:
        frames.append(read_table(ws.path("quarantine", name), columns=keys))
    counted = dask.compute(*[f.groupby(keys).size() for f in frames])
    lake = counted[0]
    held = counted[1] if has_quarantine else pd.Series(dtype="int64")
    pairs = set(lake.index) | set(held.index)
    return {p: (int(lake.get(p, 0)), int(held.get(p, 0))) for p in sorted(pairs)}


def _unchecked(stored: dict, landed: dict[str, set[str]]) -> tuple[Unchecked, ...]:
    out = []
    for (batch, name), (in_lake, held) in stored.items():
        if batch not in landed:
            out.append(Unchecked(batch, name, in_lake, held, "landing removed"))
        elif name not in landed[batch]:
            out.append(Unchecked(batch, name, in_lake, held, "not in the batch's manifest"))
    return tuple(out)


# --- one file, on a worker --------------------------------------------------------------------


def check_file(task: FileTask) -> tuple[FileCheck, list[Difference]]:
    """Compare one landed file with its rows in the lake and in quarantine."""
    path = Path(task.path)
    source = reference_frame(path, task)
    columns = list(task.schema)
    keys = [*columns, LINE_COLUMN]
    lake = _stored_rows(task.lake_files, task, keys)
    held = _stored_rows(task.quarantine_files, task, [*keys, TEXT, PARSE_ERROR])
    found = _Findings(task, path.name)
    _account(found, source, lake, held)
    _compare_values(found, source, lake, task.schema)
    _compare_quarantine(found, source, held, columns)
    found.finish()
    check = FileCheck(
        batch_id=task.batch_id,
        file=path.name,
        promoted_batch=task.promoted_batch,
        lines=len(source),
        in_lake=len(lake),
        quarantined=len(held),
        landing_altered=file_sha256(path) != task.sha256,
        **found.counts,
    )
    return check, found.samples


def reference_frame(path: Path, task: FileTask) -> pd.DataFrame:
    """One row per data line: line number, raw text, why it cannot be read, field texts."""
    lines = source_lines(file_bytes(path), task.delimiter, set(task.na_values))
    header, width = lines.header, len(lines.header)
    absent = [c for c in task.schema if c not in header]
    problems = [
        (f if isinstance(f, str) else "field_count")
        if isinstance(f, str) or len(f) != width
        else (f"missing_column:{absent[0]}" if absent else None)
        for f in lines.fields
    ]
    frame = {
        LINE_COLUMN: pd.Series(lines.numbers, dtype="int64"),
        RAW: pd.Series(lines.texts, dtype=object),
        PROBLEM: pd.Series(problems, dtype=object),
    }
    grid = np.full((len(problems), width + 1), None, dtype=object)  # last column: absent
    whole = [i for i, p in enumerate(problems) if p is None or p.startswith("missing_column")]
    if whole and width:
        grid[whole, :width] = np.array([lines.fields[i] for i in whole], dtype=object)
    for column in task.schema:
        frame[column] = pd.Series(
            grid[:, header.index(column) if column in header else width], dtype=object
        )
    return pd.DataFrame(frame)


def _stored_rows(files: tuple[str, ...], task: FileTask, columns: list[str]) -> pd.DataFrame:
    if not files:
        empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
        return empty.astype({LINE_COLUMN: "int64"})
    wanted = (pc.field(BATCH_COLUMN) == task.batch_id) & (
        pc.field(FILE_COLUMN) == Path(task.path).name
    )
    table = pads.dataset(list(files), format="parquet").to_table(columns=columns, filter=wanted)
    # Nullable integers and booleans stay exact (no detour through float).
    exact = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=exact.get)


class _Findings:
    """Counts and sample differences gathered while checking one file."""

    def __init__(self, task: FileTask, name: str) -> None:
        self.task, self.name = task, name
        self.counts: dict = {"values": Counter()}
        self.samples: list[Difference] = []

    def add(self, kind: str, lines, **detail) -> None:
        lines = [int(n) for n in lines]
        if kind == "values":
            self.counts["values"][detail["column"]] += len(lines)
        else:
            self.counts[kind] = self.counts.get(kind, 0) + len(lines)
        room = self.task.samples - len(self.samples)
        for n in lines[: max(room, 0)]:
            self.samples.append(
                Difference(kind, self.task.batch_id, self.name, n, **_sample(detail, n))
            )

    def finish(self) -> None:
        self.counts["values"] = dict(self.counts["values"])


def _sample(detail: dict, line: int) -> dict:
    out = {"column": detail.get("column")}
    for key in ("stored", "source"):
        values = detail.get(key)
        if values is not None:
            value = values.get(line)
            out[key] = None if value is None or pd.isna(value) else str(value)
    return out


def _account(found: _Findings, source: pd.DataFrame, lake, held) -> None:
    lines = set(source[LINE_COLUMN].tolist())
    lake_lines = Counter(lake[LINE_COLUMN].tolist())
    held_lines = Counter(held[LINE_COLUMN].tolist())
    stored = set(lake_lines) | set(held_lines)
    if found.task.promoted_batch:
        found.add("missing", sorted(lines - stored))
    found.add("in_both", sorted(set(lake_lines) & set(held_lines)))
    repeated = {n for n, k in lake_lines.items() if k > 1}
    repeated |= {n for n, k in held_lines.items() if k > 1}
    found.add("duplicated", sorted(repeated))
    found.add("extra", sorted(stored - lines))


def _compare_values(found: _Findings, source: pd.DataFrame, lake, schema: dict) -> None:
    pairs = lake.merge(source, on=LINE_COLUMN, how="inner", suffixes=("", ":source"))
    unreadable = pairs[PROBLEM].notna().to_numpy()
    if unreadable.any():
        texts = pairs.loc[unreadable].set_index(LINE_COLUMN)[RAW].to_dict()
        found.add(
            "values", pairs.loc[unreadable, LINE_COLUMN], column=LINE_UNREADABLE, source=texts
        )
    readable = pairs.loc[~unreadable]
    for column, kind in schema.items():
        same = equal_to_source(kind, readable[f"{column}:source"], readable[column])
        if same.all():
            continue
        bad = readable.loc[~same].set_index(LINE_COLUMN)
        found.add(
            "values",
            bad.index,
            column=column,
            stored=bad[column].to_dict(),
            source=bad[f"{column}:source"].to_dict(),
        )


def _compare_quarantine(found: _Findings, source: pd.DataFrame, held, columns) -> None:
    pairs = held.merge(source, on=LINE_COLUMN, how="inner", suffixes=("", ":source"))
    whole_line = pairs[TEXT].notna().to_numpy()
    same = np.where(whole_line, (pairs[TEXT] == pairs[RAW]).fillna(False).to_numpy(), True)
    split = pairs[PROBLEM].isna() | pairs[PROBLEM].str.startswith("missing_column", na=False)
    same &= whole_line | split.to_numpy()
    for column in columns:
        stored, wanted = pairs[column], pairs[f"{column}:source"]
        equal = (stored.isna() & wanted.isna()) | (stored == wanted).fillna(False)
        same &= whole_line | equal.to_numpy(dtype=bool)
    bad = pairs.loc[~same].set_index(LINE_COLUMN)
    stored = {
        line: text if isinstance(text, str) else ",".join(map(str, values))
        for line, text, *values in bad[[TEXT, *columns]].itertuples()
    }
    found.add("quarantine_text", bad.index, stored=stored, source=bad[RAW].to_dict())
