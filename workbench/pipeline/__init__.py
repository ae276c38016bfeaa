"""The pipeline: steps derived from the catalog, run in dependency order on one Dask client.

Step names are ``<kind>:<target>``: ``land`` and ``promote`` for lake datasets, ``curate`` for
curated datasets, ``cube`` for cubes, ``features`` for feature sets, and ``train``, ``score``
and ``monitor`` for models. Each kind is a registered class (:mod:`.steps`); whether a step runs
is decided once, from the run store (:mod:`.plan`); :mod:`.runner` runs what is stale.
"""

from workbench.pipeline.lineage import lineage_of
from workbench.pipeline.lineage_svg import lineage_svg, render_svg
from workbench.pipeline.plan import Decision, decide
from workbench.pipeline.runner import (
    RunResult,
    downstream_steps,
    plan_run,
    plan_steps,
    run_pipeline,
    select_steps,
)
from workbench.pipeline.steps import STEP_KINDS, Context, Step, StepResult, step_kind

__all__ = [
    "STEP_KINDS",
    "Context",
    "Decision",
    "RunResult",
    "Step",
    "StepResult",
    "decide",
    "downstream_steps",
    "lineage_of",
    "lineage_svg",
    "plan_run",
    "plan_steps",
    "render_svg",
    "run_pipeline",
    "select_steps",
    "step_kind",
]
