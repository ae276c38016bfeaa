"""Whether a step must run, and why: decided in one place, from the run store.

A step is up to date when its spec (the catalog text it follows), the versions of its inputs and
the workbench version all equal those of its last successful run, and its output is still there.
Anything else makes it run, with the first difference as the reason a person reads: never run,
spec changed, an input changed from version N to M, output missing, forced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workbench.catalog.base import digest
from workbench.pipeline.steps import Context, Step
from workbench.runs import RunStore

UP_TO_DATE = "up to date"
_INPUT_CHANGED = "input "


def workbench_version() -> str:
    from workbench import __version__

    return __version__


@dataclass(frozen=True)
class Decision:
    """One step's verdict: run or reuse, the reason, and what it was decided on."""

    step: str
    run: bool
    reason: str
    spec_hash: str
    inputs: dict[str, Any]
    # Only input versions changed since the last successful run (same spec, same workbench,
    # not forced, output there): the step may bring its output up to date incrementally.
    incremental: bool = False


def decide(
    step: Step, ctx: Context, store: RunStore, *, forced: bool = False, after: str | None = None
) -> Decision:
    """Run ``step`` or reuse its last output? ``after`` names an upstream step that runs first
    (for a plan shown before anything runs)."""
    spec_hash = digest(step.spec(ctx.catalog))
    inputs = _jsonable(step.inputs(ctx))
    has_output = step.output(ctx) is not None
    reason = _why(step, store.last_success(step.name), spec_hash, inputs, forced, after, has_output)
    incremental = reason.startswith(_INPUT_CHANGED) and has_output
    return Decision(step.name, reason != UP_TO_DATE, reason, spec_hash, inputs, incremental)


def _why(
    step: Step,
    last: dict | None,
    digest: str,
    inputs: dict[str, Any],
    forced: bool,
    after: str | None,
    has_output: bool,
) -> str:
    if forced:
        return "forced (--force)"
    if last is None:
        return "never run"
    if last["spec_hash"] != digest:
        return "spec changed in the catalog"
    if last["workbench"] != workbench_version():
        return f"workbench changed from {last['workbench']} to {workbench_version()}"
    before = json.loads(last["inputs"] or "{}")
    for key in sorted(set(before) | set(inputs)):
        if before.get(key) != inputs.get(key):
            was, now = _show(before.get(key)), _show(inputs.get(key))
            return f"{_INPUT_CHANGED}{key} changed from {was} to {now}"
    if not has_output:
        return "output missing"
    if after is not None:
        return f"after {after}"
    return UP_TO_DATE


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return "1 entry" if len(value) == 1 else f"{len(value)} entries"
    return f"v{value}" if isinstance(value, int) else str(value)


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(value, sort_keys=True, default=str))
