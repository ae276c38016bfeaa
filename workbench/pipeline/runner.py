"""The runner: the catalog's steps in dependency order on one Dask client, stale ones only.

Each step is decided just before it would run (its inputs are read after its upstream steps
finished), runs once on the cluster, commits its outputs atomically and is recorded in the run
store with the reason it ran or was reused.
"""

from __future__ import annotations

import errno
import graphlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from workbench.catalog.models import Catalog
from workbench.errors import DatasetNotFound, StepFailed, WorkbenchError, WorkspaceError
from workbench.io.locks import target_lock
from workbench.io.workspace import Workspace
from workbench.pipeline.openlineage import lineage_listener
from workbench.pipeline.plan import Decision, decide, workbench_version
from workbench.pipeline.steps import STEP_KINDS, Context, Step, StepResult
from workbench.runs import RunStore, now


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
    steps: dict[str, Step] = {}
    for kind in STEP_KINDS.values():
        steps |= {s.name: s for s in kind.for_catalog(catalog)}
    return steps


def select_steps(
    catalog: Catalog, targets: Iterable[str] = (), *, upstream: bool = True
) -> list[Step]:
    """The steps for ``targets`` (all when empty) and, unless ``upstream`` is False, everything
    they depend on, in run order."""
    steps = plan_steps(catalog)
    final = {s.target: s.name for s in steps.values()}  # the last step of each name wins
    wanted = [_step_name(t, steps, final, catalog) for t in targets] or list(steps)
    needed: set[str] = set(wanted)
    stack = list(wanted) if upstream else []
    while stack:
        for need in steps[stack.pop()].needs:
            if need not in needed:
                needed.add(need)
                stack.append(need)
    graph = {n: [d for d in steps[n].needs if d in needed] for n in needed}
    return [steps[n] for n in graphlib.TopologicalSorter(graph).static_order()]


def downstream_steps(catalog: Catalog, name: str) -> list[Step]:
    """The steps that read ``name``'s lake table directly or through others, in run order,
    without the ``land`` and ``promote`` steps: what must run again for rows released from
    quarantine to reach curated tables, cubes, features and models."""
    steps = plan_steps(catalog)
    changed = {f"promote:{name}"}
    order = graphlib.TopologicalSorter({n: s.needs for n, s in steps.items()}).static_order()
    found = []
    for step_name in order:
        if changed.intersection(steps[step_name].needs) and steps[step_name].kind != "promote":
            changed.add(step_name)
            found.append(steps[step_name])
    return found


def _step_name(target: str, steps: dict[str, Step], final: dict[str, str], catalog) -> str:
    if target in steps:
        return target
    if target in final:
        return final[target]
    raise DatasetNotFound(
        f"nothing named {target!r} to run; choose from "
        f"{', '.join(catalog.names())} or a step like promote:flights."
    )


def plan_run(
    catalog: Catalog,
    ws: Workspace,
    targets: Iterable[str] = (),
    *,
    upstream: bool = True,
    force: Iterable[str] | bool = (),
) -> list[Decision]:
    """What ``run_pipeline`` would run and why, without running anything."""
    steps = select_steps(catalog, list(targets), upstream=upstream)
    forced = _forced(catalog, steps, force)
    ctx, store = Context(catalog, ws), RunStore(ws.runs_db)
    decisions: dict[str, Decision] = {}
    for step in steps:
        after = next((n for n in step.needs if n in decisions and decisions[n].run), None)
        decisions[step.name] = decide(step, ctx, store, forced=step.name in forced, after=after)
    return list(decisions.values())


def _forced(catalog: Catalog, steps: list[Step], force: Iterable[str] | bool) -> set[str]:
    if force is True:
        return {s.name for s in steps}
    if not force:
        return set()
    everything = plan_steps(catalog)
    final = {s.target: s.name for s in everything.values()}
    return {_step_name(f, everything, final, catalog) for f in force}


Listener = Callable[[str, Step, StepResult | None], None]


def run_pipeline(
    catalog: Catalog,
    ws: Workspace,
    targets: Iterable[str] = (),
    *,
    cluster: str = "local",
    on_step: Listener | None = None,
    upstream: bool = True,
    force: Iterable[str] | bool = (),
    lock_wait: float | None = None,
) -> RunResult:
    """Run the selected steps that are stale on the current Dask client; stop at the first
    failure. ``force`` redoes the named steps (or all with True) even when up to date.

    Outputs of steps that finished stay committed; a failing step commits nothing, so the
    previous version of its outputs stays readable. Each step holds the write lock of its
    target while it is decided and run; when another process holds it, the step waits up to
    ``lock_wait`` seconds (default: the ``workbench.lock-wait`` setting) and then fails naming
    the holder.
    """
    targets = list(targets)
    steps = select_steps(catalog, targets, upstream=upstream)
    forced = _forced(catalog, steps, force)
    store = RunStore(ws.runs_db)
    run_id = store.start_run(catalog=str(catalog.path), targets=targets, cluster=cluster)
    ctx = Context(catalog, ws)
    on_step = lineage_listener(catalog, ws, run_id, steps, on_step)  # OpenLineage events
    results: list[StepResult] = []
    for step in steps:
        if on_step:
            on_step("start", step, None)
        started_at, t0 = now(), time.perf_counter()
        decision = None
        try:
            with target_lock(
                ws, step.writes, step.target, doing=step.name, run_id=run_id, wait=lock_wait
            ):
                decision = decide(step, ctx, store, forced=step.name in forced)
                ctx.reason, ctx.incremental = decision.reason, decision.incremental
                ctx.forced = step.name in forced
                result = step.run(ctx) if decision.run else _reused(step, store)
        except Exception as original:
            exc = _explained(original, step, ws)
            result = StepResult(
                step.name, "failed", time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"
            )
            results.append(result)
            try:
                _finish(store, run_id, step, result, started_at, decision)
                store.finish_run(run_id, "failed", result.error)
            except Exception as lost:  # e.g. the disk is full: the step's own error matters more
                exc.add_note(f"(the run store could not record this failure: {lost})")
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
        _finish(store, run_id, step, result, started_at, decision)
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


def _reused(step: Step, store: RunStore) -> StepResult:
    """An up-to-date step reports what its last run made, so summaries stay whole."""
    last = store.last_success(step.name) or {}
    return StepResult(
        step.name,
        "reused",
        0.0,
        rows_in=last.get("rows_in"),
        rows_out=last.get("rows_out"),
        outputs=json.loads(last.get("outputs") or "{}"),
        details=json.loads(last.get("details") or "{}"),
    )


def _finish(
    store: RunStore,
    run_id: str,
    step: Step,
    r: StepResult,
    started_at: str,
    decision: Decision | None,
) -> None:
    if decision is not None:
        r.reason = decision.reason
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
        inputs=decision.inputs if decision else {},
        outputs=r.outputs,
        details=r.details,
        error=r.error,
        spec_hash=decision.spec_hash if decision else None,
        workbench=workbench_version(),
        reason=r.reason,
    )
