"""Pipeline steps as registered classes: one class per kind of step.

A step knows the catalog entry it is made from (its spec), the versions of what it reads (its
inputs), the version of what it writes (its output), and how to run. The runner compares the
spec and the inputs with the step's last successful run to decide, in one place, whether it must
run again (:mod:`workbench.pipeline.plan`). A new kind of step is one class here with the
``@step_kind`` decorator: the runner, the plan and the lineage need no change.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from deltalake import DeltaTable

from workbench.catalog.models import Catalog
from workbench.errors import WorkbenchError
from workbench.io.workspace import Workspace, read_json
from workbench.zones.landing import Batch


@dataclass
class StepResult:
    step: str
    status: str  # succeeded | reused | failed
    seconds: float
    rows_in: int | None = None
    rows_out: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    reason: str = ""  # why it ran, or why it did not


@dataclass
class Context:
    """What steps of one run share: the catalog, the workspace, the batches landed so far."""

    catalog: Catalog
    ws: Workspace
    batches: dict[str, Batch] = field(default_factory=dict)
    reason: str = ""  # why the step about to run is run (set by the runner)
    # True when only its inputs' versions changed: it may add to its output instead of
    # rebuilding it, where it can prove the result equals a rebuild (set by the runner).
    incremental: bool = False
    forced: bool = False  # --force named it: redo it whole, even what the step would reuse


STEP_KINDS: dict[str, type[Step]] = {}


def step_kind(cls: type[Step]) -> type[Step]:
    """Class decorator registering a kind of step under ``cls.kind``."""
    STEP_KINDS[cls.kind] = cls
    return cls


@dataclass(frozen=True)
class Step(ABC):
    """One unit of work on one catalog target; equal when kind, target and needs are."""

    kind: ClassVar[str]
    writes: ClassVar[str]  # the workspace zone it writes (and locks)
    target: str
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}"

    @classmethod
    @abstractmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        """The steps of this kind the catalog implies."""

    @abstractmethod
    def spec(self, catalog: Catalog) -> Any:
        """The catalog text this step follows; a change to it makes the step stale."""

    def inputs(self, ctx: Context) -> dict[str, Any]:
        """Versions of what the step reads; a change makes the step stale."""
        return {}

    def output(self, ctx: Context) -> Any:
        """The current version of what the step wrote, None when it is missing."""
        return None

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        """What the step reads and writes, as lineage names (``lake/flights``, ``models/m``)."""
        return [], [f"{self.writes}/{self.target}"]

    @abstractmethod
    def run(self, ctx: Context) -> StepResult:
        """Do the work and commit it; return what happened."""


def table_version(path: Path) -> int | None:
    """The Delta table's current version, None when there is no table yet."""
    return DeltaTable(str(path)).version() if DeltaTable.is_deltatable(str(path)) else None


def producer(catalog: Catalog, name: str) -> str:
    """The step that writes dataset ``name``: its promotion, or its curation."""
    return f"{'promote' if catalog.datasets[name].zone == 'lake' else 'curate'}:{name}"


def dataset_id(catalog: Catalog, name: str) -> str:
    """The lineage name of table ``name``: its zone and name, as the run store's inputs say."""
    return f"{catalog.datasets[name].zone}/{name}"


def entry_json(entry: Any) -> Any:
    return entry.model_dump(mode="json", by_alias=True) if hasattr(entry, "model_dump") else entry


# --- the kinds --------------------------------------------------------------------------------


@step_kind
@dataclass(frozen=True)
class Land(Step):
    kind: ClassVar[str] = "land"
    writes: ClassVar[str] = "landing"

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        return [cls(n) for n, d in catalog.datasets.items() if d.zone == "lake"]

    def spec(self, catalog: Catalog) -> Any:
        source = catalog.datasets[self.target].source
        return {"source": entry_json(source), "load": catalog.datasets[self.target].load}

    def inputs(self, ctx: Context) -> dict[str, Any]:
        # Size and modification time stand for the content here: hashing a 7 GB file on
        # every run would cost more than the step; landing itself compares sha256.
        stats = {p: p.stat() for p in _source_files(ctx, self.target)}
        return {"files": {str(p): [s.st_size, s.st_mtime_ns] for p, s in stats.items()}}

    def output(self, ctx: Context) -> Any:
        from workbench.zones.landing import list_batches

        batches = list_batches(ctx.ws, self.target)
        return batches[-1].batch_id if batches else None

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        return [f"source/{self.target}"], [f"landing/{self.target}"]

    def run(self, ctx: Context) -> StepResult:
        from workbench.io.sources import resolve_source
        from workbench.zones.landing import land
        from workbench.zones.retention import promoted_digests

        catalog, ws, name = ctx.catalog, ctx.ws, self.target
        dataset = catalog.datasets[name]
        base = catalog.path.parent if catalog.path else None
        # An appending source folder keeps its old files: land only what is not promoted yet.
        skip = promoted_digests(ws, name) if dataset.load == "append" else ()
        batch = land(ws, name, resolve_source(dataset.source.path, base), skip=skip)
        ctx.batches[name] = batch
        return StepResult(
            self.name,
            "reused" if batch.reused else "succeeded",
            0.0,
            rows_out=batch.rows,
            outputs={
                "batch": batch.batch_id,
                "path": str(ws.path("landing", name, batch.batch_id)),
            },
            details={
                "files": [f.name for f in batch.files],
                "sha256": [f.sha256 for f in batch.files],
            },
        )


def _source_files(ctx: Context, name: str) -> list[Path]:
    from workbench.io.sources import resolve_source

    base = ctx.catalog.path.parent if ctx.catalog.path else None
    return resolve_source(ctx.catalog.datasets[name].source.path, base)


@step_kind
@dataclass(frozen=True)
class Promote(Step):
    kind: ClassVar[str] = "promote"
    writes: ClassVar[str] = "lake"

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        out = []
        for name, ds in catalog.datasets.items():
            if ds.zone == "lake":
                refs = tuple(producer(catalog, d) for d in ds.upstream())
                out.append(cls(name, (f"land:{name}", *refs)))
        return out

    def spec(self, catalog: Catalog) -> Any:
        return entry_json(catalog.datasets[self.target])

    def inputs(self, ctx: Context) -> dict[str, Any]:
        batch = ctx.batches.get(self.target) or _latest_batch(ctx.ws, self.target)
        refs = ctx.catalog.datasets[self.target].upstream()
        return {"batch": batch.batch_id if batch else None} | {
            f"lake/{r}": table_version(ctx.ws.path("lake", r)) for r in refs
        }

    def output(self, ctx: Context) -> Any:
        from workbench.zones.promote import pending_path

        if pending_path(ctx.ws, self.target).exists():  # half committed: not a usable output
            return None
        return table_version(ctx.ws.path("lake", self.target))

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        refs = [f"lake/{r}" for r in catalog.datasets[self.target].upstream()]
        return [f"landing/{self.target}", *refs], [
            f"lake/{self.target}",
            f"quarantine/{self.target}",
        ]

    def run(self, ctx: Context) -> StepResult:
        from workbench.zones.promote import finish_pending, promote_batch

        name = self.target
        batch = ctx.batches.get(name) or _latest_batch(ctx.ws, name)
        if batch is None:
            raise WorkbenchError(
                f"nothing landed for {name!r} yet; run `workbench run land:{name}`."
            )
        # A promotion that died between its lake and quarantine commits is finished first.
        healed = finish_pending(ctx.catalog, ctx.ws, name, batch.batch_id)
        p = promote_batch(ctx.catalog, ctx.ws, name, batch)
        failed = {code: asdict(r) for code, r in p.reasons.items() if r.rows or r.quarantined_too}
        return StepResult(
            self.name,
            "succeeded",
            0.0,
            rows_in=p.rows_read,
            rows_out=p.promoted,
            outputs={
                "lake": str(ctx.ws.path("lake", name)),
                "lake_version": p.lake_version,
                "quarantine_version": p.quarantine_version,
            },
            details={
                "quarantined": p.quarantined,
                "warned": p.warned,
                "reasons": failed,
                "reconciled": p.reconciled,
                "batch": p.batch_id,
                "healed": healed,
            },
        )


def _latest_batch(ws: Workspace, name: str) -> Batch | None:
    from workbench.zones.landing import list_batches

    landed = list_batches(ws, name)
    return landed[-1] if landed else None


def table_inputs(ctx: Context, names: list[str]) -> dict[str, Any]:
    from workbench.zones.tables import table_path

    return {
        f"{ctx.catalog.datasets[n].zone}/{n}": table_version(table_path(ctx.catalog, ctx.ws, n))
        for n in names
    }


@step_kind
@dataclass(frozen=True)
class Curate(Step):
    kind: ClassVar[str] = "curate"
    writes: ClassVar[str] = "curated"

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        return [
            cls(n, tuple(producer(catalog, d) for d in ds.upstream()))
            for n, ds in catalog.datasets.items()
            if ds.zone != "lake"
        ]

    def spec(self, catalog: Catalog) -> Any:
        return entry_json(catalog.datasets[self.target])

    def inputs(self, ctx: Context) -> dict[str, Any]:
        return table_inputs(ctx, ctx.catalog.datasets[self.target].upstream())

    def output(self, ctx: Context) -> Any:
        return table_version(ctx.ws.path("curated", self.target))

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        reads = [dataset_id(catalog, d) for d in catalog.datasets[self.target].upstream()]
        return reads, [f"curated/{self.target}"]

    def run(self, ctx: Context) -> StepResult:
        from workbench.zones.curated import build_curated

        c = build_curated(ctx.catalog, ctx.ws, self.target, incremental=ctx.incremental)
        mode = "full" if c.appended is None else f"appended {c.appended} rows"
        return StepResult(
            self.name,
            "succeeded",
            0.0,
            rows_out=c.rows,
            outputs={"curated": str(ctx.ws.path("curated", self.target)), "version": c.version},
            details={"broadcast": list(c.broadcast), "mode": mode},
        )


@step_kind
@dataclass(frozen=True)
class Cube(Step):
    kind: ClassVar[str] = "cube"
    writes: ClassVar[str] = "cubes"

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        out = []
        for name in catalog.cubes:
            needs = [producer(catalog, d) for d in cls._reads(catalog, name)]
            out.append(cls(name, tuple(dict.fromkeys(needs))))
        return out

    @staticmethod
    def _reads(catalog: Catalog, name: str) -> list[str]:
        cube = catalog.cubes[name]
        return [cube.source, *[d.labels.dataset for d in cube.dimensions.values() if d.labels]]

    def spec(self, catalog: Catalog) -> Any:
        return entry_json(catalog.cubes[self.target])

    def inputs(self, ctx: Context) -> dict[str, Any]:
        return table_inputs(ctx, list(dict.fromkeys(self._reads(ctx.catalog, self.target))))

    def output(self, ctx: Context) -> Any:
        pointer = ctx.ws.path("cubes", self.target, "CURRENT.json")
        if not pointer.exists():
            return None
        current = read_json(pointer)
        return current["version"] if (pointer.parent / current["path"]).is_dir() else None

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        reads = dict.fromkeys(dataset_id(catalog, d) for d in self._reads(catalog, self.target))
        return list(reads), [f"cubes/{self.target}"]

    def run(self, ctx: Context) -> StepResult:
        from workbench.cubes.build import build_cube, update_cube

        build = update_cube if ctx.incremental else build_cube
        b = build(ctx.catalog, ctx.ws, self.target)
        return StepResult(
            self.name,
            "succeeded",
            0.0,
            rows_in=b.rows_in,
            rows_out=math.prod(b.shape.values()),
            outputs={"cube": str(b.path), "version": b.version},
            details={"shape": b.shape, "cuboids": b.cuboids, "mode": b.mode},
        )


# The model steps live in their own module; importing it here registers them after the data
# steps, in run order, for everything that imports this module.
from workbench.pipeline import ml_steps  # noqa: E402, F401
