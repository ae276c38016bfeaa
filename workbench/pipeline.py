"""The pipeline: steps derived from the catalog, run in dependency order on one Dask client.

Step names are ``<kind>:<target>``: ``land`` and ``promote`` for lake datasets, ``curate`` for
curated datasets, ``cube`` for cubes, ``features`` for feature sets and ``train`` for models
(which retrains only when the model's ``retrain:`` policy fires). Each step computes once on the
cluster, commits its outputs atomically and is recorded in the run store.
"""

from __future__ import annotations

import errno
import graphlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.catalog.models import Catalog
from workbench.cubes.build import build_cube
from workbench.errors import DatasetNotFound, StepFailed, WorkbenchError, WorkspaceError
from workbench.io.locks import target_lock
from workbench.io.sources import resolve_source
from workbench.io.workspace import Workspace
from workbench.ml.features import build_features
from workbench.ml.policy import retrain_reasons
from workbench.ml.steps import monitor_step, score_step
from workbench.ml.train import train_model
from workbench.runs import RunStore, now
from workbench.zones.curated import build_curated
from workbench.zones.landing import Batch, land, list_batches
from workbench.zones.promote import finish_pending, promote_batch

# What each kind of step writes: its lock is that zone's lock on the step's target, the same
# lock the CLI commands writing there take (`cube refresh`, `lake vacuum`, `quarantine release`).
WRITES = {
    "land": "landing",
    "promote": "lake",
    "curate": "curated",
    "cube": "cubes",
    "features": "features",
    "train": "models",
    "score": "predictions",
    "monitor": "monitoring",
}


@dataclass(frozen=True)
class Step:
    kind: str
    target: str
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass
class StepResult:
    step: str
    status: str
    seconds: float
    rows_in: int | None = None
    rows_out: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    status: str
    workspace: str
    steps: list[StepResult]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_steps(catalog: Catalog) -> dict[str, Step]:
    """Every step the catalog implies, keyed by name, with the steps each one needs."""

    def producer(name: str) -> str:
        return f"{'promote' if catalog.datasets[name].zone == 'lake' else 'curate'}:{name}"

    steps: dict[str, Step] = {}
    for name, ds in catalog.datasets.items():
        if ds.zone == "lake":
            steps[f"land:{name}"] = Step("land", name)
            refs = tuple(producer(d) for d in ds.upstream())
            steps[f"promote:{name}"] = Step("promote", name, (f"land:{name}", *refs))
        else:
            steps[f"curate:{name}"] = Step(
                "curate", name, tuple(producer(d) for d in ds.upstream())
            )
    for name, cube in catalog.cubes.items():
        labels = [d.labels.dataset for d in cube.dimensions.values() if d.labels]
        steps[f"cube:{name}"] = Step(
            "cube", name, tuple(dict.fromkeys(producer(d) for d in [cube.source, *labels]))
        )
    for name, fs in catalog.features.items():
        steps[f"features:{name}"] = Step("features", name, (producer(fs.source),))
    for name, model in catalog.models.items():
        steps[f"train:{name}"] = Step("train", name, (f"features:{model.feature_set}",))
        steps[f"score:{name}"] = Step("score", name, (f"train:{name}",))
        steps[f"monitor:{name}"] = Step("monitor", name, (f"score:{name}",))
    return steps


def select_steps(
    catalog: Catalog, targets: Iterable[str] = (), *, upstream: bool = True
) -> list[Step]:
    """The steps for ``targets`` (all when empty) and, unless ``upstream`` is False, everything
    they depend on, in run order."""
    steps = plan_steps(catalog)
    final = {s.target: s.name for s in steps.values()}  # the last step of each name wins
    wanted = []
    for target in targets:
        if target in steps:
            wanted.append(target)
        elif target in final:
            wanted.append(final[target])
        else:
            raise DatasetNotFound(
                f"nothing named {target!r} to run; choose from "
                f"{', '.join(catalog.names())} or a step like promote:flights."
            )
    wanted = wanted or list(steps)
    if not upstream:
        return [steps[n] for n in dict.fromkeys(wanted)]
    needed: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(steps[name].needs)
    order = graphlib.TopologicalSorter({n: steps[n].needs for n in needed}).static_order()
    return [steps[n] for n in order]


Listener = Callable[[str, Step, StepResult | None], None]


def run_pipeline(
    catalog: Catalog,
    ws: Workspace,
    targets: Iterable[str] = (),
    *,
    cluster: str = "local",
    on_step: Listener | None = None,
    upstream: bool = True,
    lock_wait: float | None = None,
) -> RunResult:
    """Run the selected steps on the current Dask client; stop at the first failure.

    Outputs of steps that finished stay committed; a failing step commits nothing, so the
    previous version of its outputs stays readable. Each step holds the write lock of its
    target while it runs; when another process holds it, the step waits up to ``lock_wait``
    seconds (default: the ``workbench.lock-wait`` setting) and then fails naming the holder.
    """
    targets = list(targets)
    steps = select_steps(catalog, targets, upstream=upstream)
    store = RunStore(ws.runs_db)
    run_id = store.start_run(catalog=str(catalog.path), targets=targets, cluster=cluster)
    batches: dict[str, Batch] = {}
    results: list[StepResult] = []
    for step in steps:
        if on_step:
            on_step("start", step, None)
        started_at, t0 = now(), time.perf_counter()
        try:
            with target_lock(
                ws, WRITES[step.kind], step.target, doing=step.name, run_id=run_id, wait=lock_wait
            ):
                result = _execute(catalog, ws, step, batches)
        except Exception as original:
            exc = _explained(original, step, ws)
            result = StepResult(
                step.name, "failed", time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"
            )
            try:
                _record(store, run_id, step, result, started_at)
                store.finish_run(run_id, "failed", result.error)
            except Exception as lost:  # e.g. the disk is full: the step's own error matters more
                exc.add_note(f"(the run store could not record this failure: {lost})")
            results.append(result)
            if on_step:
                on_step("end", step, result)
            if isinstance(exc, WorkbenchError):
                exc.run_id = run_id
                if exc is original:
                    raise
                raise exc from original
            raise StepFailed(
                f"step {step.name} failed: {result.error} (run {run_id})"
            ) from original
        result.seconds = time.perf_counter() - t0
        _record(store, run_id, step, result, started_at)
        results.append(result)
        if on_step:
            on_step("end", step, result)
    store.finish_run(run_id, "succeeded")
    return RunResult(run_id, "succeeded", str(ws.root), results)


def _explained(exc: Exception, step: Step, ws: Workspace) -> Exception:
    """Cluster and disk failures, said in terms of the step and what to do."""
    name = type(exc).__name__
    if name == "KilledWorker":
        return StepFailed(
            f"step {step.name}: a task of {step.target!r} killed every worker it ran on "
            f"(KilledWorker: {exc}); the data or a rule crashes the process (segfault, out of "
            "memory). Nothing was committed; see the worker logs, then run again."
        )
    if name in ("NoWorkerError", "NoValidWorkerError"):
        return StepFailed(
            f"step {step.name}: no Dask worker left to run {step.target!r} ({exc}); the cluster "
            "lost all its workers (killed, out of memory, walltime). Nothing was committed; "
            "check the cluster and run again."
        )
    if _disk_full(exc):
        return WorkspaceError(
            f"step {step.name}: no space left on the device holding {ws.root} while writing "
            f"{step.target!r} ({exc}). The previous version stays readable; free space there "
            "(`df -h`, `workbench lake vacuum`) and run again."
        )
    return exc


def _disk_full(exc: BaseException | None) -> bool:
    while exc is not None:
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _record(store: RunStore, run_id: str, step: Step, r: StepResult, started_at: str) -> None:
    store.record_step(
        run_id,
        step=step.name,
        kind=step.kind,
        target=step.target,
        status=r.status,
        started_at=started_at,
        seconds=r.seconds,
        rows_in=r.rows_in,
        rows_out=r.rows_out,
        inputs=list(step.needs),
        outputs=r.outputs,
        details=r.details,
        error=r.error,
    )


def _latest_batch(ws: Workspace, name: str) -> Batch:
    landed = list_batches(ws, name)
    if not landed:
        raise WorkbenchError(f"nothing landed for {name!r} yet; run `workbench run land:{name}`.")
    return landed[-1]


def _execute(catalog: Catalog, ws: Workspace, step: Step, batches: dict[str, Batch]) -> StepResult:
    name = step.target
    if step.kind == "land":
        base = catalog.path.parent if catalog.path else None
        batch = land(ws, name, resolve_source(catalog.datasets[name].source.path, base))
        batches[name] = batch
        return StepResult(
            step.name,
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
    if step.kind == "promote":
        batch = batches.get(name) or _latest_batch(ws, name)
        healed = finish_pending(catalog, ws, name, batch.batch_id)
        p = promote_batch(catalog, ws, name, batch)
        failed = {code: asdict(r) for code, r in p.reasons.items() if r.rows}
        return StepResult(
            step.name,
            "succeeded",
            0.0,
            rows_in=p.rows_read,
            rows_out=p.promoted,
            outputs={
                "lake": str(ws.path("lake", name)),
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
    if step.kind == "curate":
        c = build_curated(catalog, ws, name)
        return StepResult(
            step.name,
            "succeeded",
            0.0,
            rows_out=c.rows,
            outputs={"curated": str(ws.path("curated", name)), "version": c.version},
            details={"broadcast": list(c.broadcast)},
        )
    if step.kind == "cube":
        b = build_cube(catalog, ws, name)
        return StepResult(
            step.name,
            "succeeded",
            0.0,
            rows_in=b.rows_in,
            rows_out=math.prod(b.shape.values()),
            outputs={"cube": str(b.path), "version": b.version},
            details={"shape": b.shape, "cuboids": b.cuboids},
        )
    if step.kind == "features":
        f = build_features(catalog, ws, name)
        return StepResult(
            step.name,
            "reused" if f.reused else "succeeded",
            0.0,
            rows_out=sum(f.rows.values()),
            outputs={"features": str(ws.path("features", name)), "version": f.version},
            details={"rows": f.rows, "source_version": f.source_version},
        )
    if step.kind == "train":
        return _train_step(catalog, ws, step)
    if step.kind in ("score", "monitor"):
        run = score_step if step.kind == "score" else monitor_step
        out = run(catalog, ws, name)
        status = "reused" if out.pop("reused") else "succeeded"
        return StepResult(step.name, status, 0.0, rows_out=out.get("rows"), details=out)
    raise WorkbenchError(f"unknown step kind {step.kind!r}")


def _train_step(catalog: Catalog, ws: Workspace, step: Step) -> StepResult:
    reasons = retrain_reasons(catalog, ws, step.target)
    if not reasons:
        return StepResult(step.name, "reused", 0.0, details={"reasons": []})
    t = train_model(catalog, ws, step.target, reason="; ".join(reasons))
    return StepResult(
        step.name,
        "succeeded",
        0.0,
        rows_in=t.metrics["train_rows"],
        outputs={"model": str(t.registered.path), "version": t.registered.version},
        details={
            "metrics": t.metrics,
            "reasons": reasons,
            "promotion": t.promotion.to_dict() if t.promotion else None,
        },
    )
