"""`lake verify`: prove by content that the lake holds what the landed files say.

One Dask task per block of each landed file that the lake or quarantine holds rows of. A task
reads its block with the reference reader (:mod:`workbench.zones.reference`, no promotion code),
types the text in DuckDB (:mod:`workbench.zones.reference_types`), reads only the lake and
quarantine rows of that file and line range (the Parquet row groups whose statistics can hold
them), and compares row fingerprints (DuckDB ``hash`` of the typed values) keyed by line. Only
lines whose fingerprints differ have their values pulled, into a bounded list of differences.
Per line it checks:

- every data line of a promoted batch is in the lake or in quarantine (``missing``), not in both
  (``in_both``), and at most once (``duplicated``); no row claims a line the file does not have
  (``extra``);
- every lake value equals the source field as the reference types it (``values``);
- every quarantined row keeps the original text of its line (``quarantine_text``).

Per file: the landed file still has the digest recorded when it landed (``landing_altered``),
and the manifest's block plan holds (each block starts a line, with the line number counted
here, and the data lines add up to the manifest's rows). Rows whose batch is no longer in
landing (removed by retention) cannot be checked; they are counted, not failed. Rows naming a
file their batch never landed are failed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import dask
import pyarrow as pa
from deltalake import DeltaTable

from workbench import config
from workbench.catalog.models import Catalog, Dataset
from workbench.cluster import worker_threads
from workbench.errors import CatalogError, DatasetNotFound
from workbench.io.delta import open_table
from workbench.io.gzseek import record_seek_points
from workbench.io.textscan import GRAIN, read_plan
from workbench.io.workspace import Workspace
from workbench.zones.landing import list_batches
from workbench.zones.reference import file_sha256, header_text, parse_header
from workbench.zones.reference_types import LAKE_TYPES
from workbench.zones.retention import promoted_batches
from workbench.zones.verify_block import BlockOutcome, BlockTask, check_block
from workbench.zones.verify_stored import RowGroup, row_groups, stored_counts


@dataclass(frozen=True)
class Difference:
    """One line (or file) where the lake or quarantine disagrees with its source."""

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
    blocks: int = 1
    missing: int = 0
    in_both: int = 0
    duplicated: int = 0
    extra: int = 0
    values: dict[str, int] = field(default_factory=dict)
    quarantine_text: int = 0
    landing_altered: bool = False
    block_plan: int = 0  # blocks not starting a line or at another line than counted here

    @property
    def problems(self) -> int:
        counts = (self.missing, self.in_both, self.duplicated, self.extra, self.quarantine_text)
        altered = int(self.landing_altered) + self.block_plan
        return sum(counts) + sum(self.values.values()) + altered


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
    schema: tuple[str, ...] = ()  # lake columns whose type is not the declared one

    @property
    def rows_checked(self) -> int:
        return sum(f.in_lake + f.quarantined for f in self.files)

    @property
    def ok(self) -> bool:
        orphans = [u for u in self.unchecked if u.reason != "landing removed"]
        return not orphans and not self.schema and all(f.problems == 0 for f in self.files)

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok, "rows_checked": self.rows_checked}


def verify_lake(
    catalog: Catalog, ws: Workspace, name: str, *, version: int | None = None, samples: int = 20
) -> Verification:
    """Check a lake version (default: the current one) and its quarantine against the landed
    files, on the current Dask client.

    Examples
    --------
    >>> result = verify_lake(catalog, ws, "flights")  # doctest: +SKIP
    >>> result.ok, result.rows_checked                # doctest: +SKIP
    (True, 336776)
    """
    dataset = _lake_dataset(catalog, name)
    lake = open_table(ws.path("lake", name), version)
    quarantine = _quarantine_at(ws.path("quarantine", name), lake, version is None)
    lake_groups = row_groups(lake.file_uris())
    held_groups = row_groups(quarantine.file_uris()) if quarantine is not None else []
    stored = stored_counts(lake_groups, held_groups)
    promoted = {b for (b, _), (n, _) in stored.items() if n}
    if dataset.load != "replace":
        promoted |= promoted_batches(ws, name)
    work, digests, files, landed = [], {}, {}, {}
    threads = worker_threads()
    ws.path(".verify").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=ws.path(".verify")))  # seen by every worker
    for batch in list_batches(ws, name):
        landed[batch.batch_id] = {f.name for f in batch.files}
        if batch.batch_id not in promoted and not any(b == batch.batch_id for b, _ in stored):
            continue
        for landed_file, path in zip(batch.files, batch.paths(ws), strict=True):
            key = (batch.batch_id, landed_file.name)
            files[key] = landed_file
            digests[key] = dask.delayed(file_sha256, pure=False)(path)
            tasks = _block_tasks(
                dataset, batch.batch_id in promoted, key, path, landed_file,
                lake_groups, held_groups, samples, len(batch.files), threads,
            )  # fmt: skip
            work += _block_work(tasks, path, scratch / f"{len(digests)}.points")
    try:
        outcomes, sums = dask.compute(work, digests)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    checks, differences = _per_file(files, outcomes, sums, promoted, samples)
    return Verification(
        dataset=name,
        lake_version=lake.version(),
        quarantine_version=quarantine.version() if quarantine is not None else None,
        files=checks,
        unchecked=_unchecked(stored, landed),
        differences=differences,
        schema=_schema_mismatches(lake, dataset),
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


def _quarantine_at(path: Path, lake: DeltaTable, current: bool) -> DeltaTable | None:
    """The current quarantine, or for a past lake version the quarantine version that was
    current when it was committed (promotion commits quarantine first, then the lake)."""
    if not DeltaTable.is_deltatable(str(path)):
        return None
    table = DeltaTable(str(path))
    if current:
        return table
    committed = next(h["timestamp"] for h in lake.history() if h["version"] == lake.version())
    versions = [h for h in table.history() if h["timestamp"] <= committed]
    if not versions:
        return None
    wanted = max(h["version"] for h in versions)
    if wanted != table.version():
        table = DeltaTable(str(path), version=wanted)
    return table


def _schema_mismatches(lake: DeltaTable, dataset: Dataset) -> tuple[str, ...]:
    schema = pa.schema(lake.schema().to_arrow())
    out = []
    for column, kind in dataset.schema_.items():
        found = str(schema.field(column).type) if column in schema.names else "absent"
        expected = LAKE_TYPES[kind]
        if found != expected and not (
            kind == "string" and found in ("large_string", "string_view")
        ):
            out.append(f"{column}: {found} in the lake, {expected} expected for {kind}")
    return tuple(out)


def _unchecked(stored: dict, landed: dict[str, set[str]]) -> tuple[Unchecked, ...]:
    out = []
    for (batch, name), (in_lake, held) in stored.items():
        if batch not in landed:
            out.append(Unchecked(batch, name, in_lake, held, "landing removed"))
        elif name not in landed[batch]:
            out.append(Unchecked(batch, name, in_lake, held, "not in the batch's manifest"))
    return tuple(out)


def _block_tasks(
    dataset: Dataset, promoted: bool, key: tuple[str, str], path: Path, landed_file,
    lake: list[RowGroup], held: list[RowGroup], samples: int, files: int, threads: int,
) -> list[BlockTask]:  # fmt: skip
    """One task per block of the manifest's plan, grouped as promotion groups them (one
    block for manifests without a plan). The first block takes every line before the second,
    the last every line after its start, so that each stored row of the file falls in exactly
    one block."""
    batch_id, name = key
    blocks = [(0, 1)]
    if landed_file.blocks:
        blocks = list(read_plan(landed_file.scan(path), files, threads).blocks)
    header = parse_header(header_text(path), dataset.source.delimiter)
    tasks = []
    for k, (start, first_line) in enumerate(blocks):
        last = k == len(blocks) - 1
        lo = None if k == 0 else first_line
        hi = None if last else blocks[k + 1][1]
        tasks.append(
            BlockTask(
                batch_id=batch_id, name=name, path=str(path), index=k,
                start=start, stop=None if last else blocks[k + 1][0], first_line=first_line,
                line_range=(lo, hi), header=tuple(header), schema=dict(dataset.schema_),
                markers=_markers(dataset), delimiter=dataset.source.delimiter,
                promoted=promoted, samples=samples,
                lake=tuple((g.path, g.index) for g in lake if g.may_hold(batch_id, name, lo, hi)),
                held=tuple((g.path, g.index) for g in held if g.may_hold(batch_id, name, lo, hi)),
            )
        )  # fmt: skip
    return tasks


def _block_work(tasks: list[BlockTask], path: Path, points: Path) -> list:
    """The file's block checks. The blocks of a .gz of more than two are read from seek
    points this verify records first, in one pass over the landed file: without them, block k
    inflates the k blocks before it."""
    if path.suffix != ".gz" or len(tasks) <= 2:
        return [dask.delayed(check_block, pure=False)(t) for t in tasks]
    # A point as often as landing records line starts.
    spacing = config.get("block-bytes") // GRAIN
    recorded = dask.delayed(record_seek_points, pure=False)(path, spacing, points)
    return [
        dask.delayed(check_block, pure=False)(replace(t, points=str(points)), recorded)
        for t in tasks
    ]


def _markers(dataset) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Per column, the texts the catalog reads as missing (``na_values``, per column or from
    the source), quoted or not: the lake holds null for them, the quarantine the text."""
    return tuple((c, tuple(m)) for c, m in dataset.na_values().items() if m)


def _per_file(
    files: dict, outcomes: list[BlockOutcome], digests: dict, promoted: set[str], samples: int
) -> tuple[tuple[FileCheck, ...], tuple[Difference, ...]]:
    """Block outcomes summed per file, with the block plan checked against the lines counted."""
    by_file: dict[tuple[str, str], list[BlockOutcome]] = {}
    for outcome in outcomes:
        by_file.setdefault((outcome.batch_id, outcome.name), []).append(outcome)
    checks, differences = [], []
    for key, landed_file in files.items():
        blocks = sorted(by_file[key], key=lambda o: o.index)
        batch_id, name = key
        plan = _plan_breaks(blocks)
        differences += [Difference("block_plan", batch_id, name, line) for line in plan]
        counts: Counter = Counter()
        values: Counter = Counter()
        for block in blocks:
            counts.update(block.counts)
            values.update(block.values)
            differences += [Difference(*d) for d in block.samples]
        lines = sum(b.lines for b in blocks)
        if lines != landed_file.rows:  # the manifest's row count, against the lines read here
            plan.append(0)
            differences.append(
                Difference("block_plan", batch_id, name, 0, None, str(landed_file.rows), str(lines))
            )
        altered = digests[key] != landed_file.sha256
        if altered:
            differences.append(Difference("landing_altered", batch_id, name, 0))
        checks.append(
            FileCheck(
                batch_id=batch_id, file=name, promoted_batch=batch_id in promoted, lines=lines,
                in_lake=sum(b.in_lake for b in blocks), quarantined=sum(b.held for b in blocks),
                blocks=len(blocks), values=dict(values), landing_altered=altered,
                block_plan=len(plan), **{k: counts[k] for k in
                                         ("missing", "in_both", "duplicated", "extra",
                                          "quarantine_text")},
            )
        )  # fmt: skip
    return tuple(checks), tuple(differences[:samples])


def _plan_breaks(blocks: list[BlockOutcome]) -> list[int]:
    """Line numbers of blocks that do not start a line, or not the line counted up to them."""
    breaks, expected = [], 1
    for block in blocks:
        if not block.aligned or block.first_line != expected:
            breaks.append(block.first_line)
        expected += block.line_ends  # counted here, whatever the manifest says
    return breaks
