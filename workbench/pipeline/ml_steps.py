"""The model steps: features, train, score and monitor (see :mod:`workbench.pipeline.steps`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.catalog.base import digest
from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.pipeline.steps import (
    Context,
    Step,
    StepResult,
    dataset_id,
    entry_json,
    producer,
    step_kind,
    table_inputs,
    table_version,
)

# Parts of a model's catalog entry that say when to retrain, monitor or tune it, not what it is.
_POLICY = ("retrain", "monitor", "tune")


@step_kind
@dataclass(frozen=True)
class Features(Step):
    kind: ClassVar[str] = "features"
    writes: ClassVar[str] = "features"

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        return [cls(n, (producer(catalog, fs.source),)) for n, fs in catalog.features.items()]

    def spec(self, catalog: Catalog) -> Any:
        return entry_json(catalog.features[self.target])

    def inputs(self, ctx: Context) -> dict[str, Any]:
        return table_inputs(ctx, [ctx.catalog.features[self.target].source])

    def output(self, ctx: Context) -> Any:
        return table_version(ctx.ws.path("features", self.target))

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        return [dataset_id(catalog, catalog.features[self.target].source)], [
            f"features/{self.target}"
        ]

    def run(self, ctx: Context) -> StepResult:
        from workbench.ml.feature_build import build_features

        f = build_features(
            ctx.catalog, ctx.ws, self.target, force=ctx.forced, incremental=ctx.incremental
        )
        return StepResult(
            self.name,
            "reused" if f.reused else "succeeded",
            0.0,
            rows_out=sum(f.rows.values()),
            outputs={"features": str(ctx.ws.path("features", self.target)), "version": f.version},
            details={
                "rows": f.rows,
                "source_version": f.source_version,
                "mode": "full" if f.appended is None else f"appended {f.appended} rows",
            },
        )


def _model_inputs(ctx: Context, name: str, *, with_model: bool) -> dict[str, Any]:
    from workbench.ml.registry import aliases

    feature_set = ctx.catalog.models[name].feature_set
    out = {f"features/{feature_set}": table_version(ctx.ws.path("features", feature_set))}
    if with_model:
        out[f"models/{name}"] = aliases(ctx.ws, name).get("production")
    return out


@step_kind
@dataclass(frozen=True)
class Train(Step):
    kind: ClassVar[str] = "train"
    writes: ClassVar[str] = "models"

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        return [cls(n, (f"features:{m.feature_set}",)) for n, m in catalog.models.items()]

    def spec(self, catalog: Catalog) -> Any:
        # The policy parts: a change makes the step ask its retrain policy again.
        entry = entry_json(catalog.models[self.target])
        return {k: entry.get(k) for k in _POLICY}

    def inputs(self, ctx: Context) -> dict[str, Any]:
        # The model itself (estimator, params, features, label): a change is a reason to train.
        entry = entry_json(ctx.catalog.models[self.target])
        model = {k: v for k, v in entry.items() if k not in _POLICY}
        return _model_inputs(ctx, self.target, with_model=False) | {"model entry": digest(model)}

    def output(self, ctx: Context) -> Any:
        from workbench.ml.registry import aliases

        return aliases(ctx.ws, self.target).get("production") or _newest(ctx.ws, self.target)

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        return [f"features/{catalog.models[self.target].feature_set}"], [f"models/{self.target}"]

    def run(self, ctx: Context) -> StepResult:
        from workbench.ml.policy import retrain_reasons
        from workbench.ml.train import train_model

        reasons = retrain_reasons(ctx.catalog, ctx.ws, self.target)
        if ctx.forced or ctx.reason.startswith("input model entry"):
            # The retrain policy judges data and drift; a changed model (new params) or
            # --force train:<model> is a reason of its own.
            reasons = [*reasons, ctx.reason]
        if not reasons:
            return StepResult(self.name, "reused", 0.0, details={"reasons": []})
        t = train_model(ctx.catalog, ctx.ws, self.target, reason="; ".join(reasons))
        return StepResult(
            self.name,
            "succeeded",
            0.0,
            rows_in=t.metrics.get("train_rows"),
            outputs={"model": str(t.registered.path), "version": t.registered.version},
            details={
                "metrics": t.metrics,
                "reasons": reasons,
                "promotion": t.promotion.to_dict() if t.promotion else None,
            },
        )


def _newest(ws: Workspace, name: str) -> int | None:
    from workbench.ml.registry import list_versions

    versions = list_versions(ws, name)
    return versions[-1]["version"] if versions else None


@dataclass(frozen=True)
class _AfterTraining(Step):
    """Scoring and monitoring: they follow the model's catalog entry and read its production
    version and its feature table."""

    after: ClassVar[str]  # the step of the same model that comes just before

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> list[Step]:
        return [cls(n, (f"{cls.after}:{n}",)) for n in catalog.models]

    def spec(self, catalog: Catalog) -> Any:
        return entry_json(catalog.models[self.target])

    def inputs(self, ctx: Context) -> dict[str, Any]:
        return _model_inputs(ctx, self.target, with_model=True)

    def datasets(self, catalog: Catalog) -> tuple[list[str], list[str]]:
        features = f"features/{catalog.models[self.target].feature_set}"
        return [f"models/{self.target}", features], [f"{self.writes}/{self.target}"]


@step_kind
@dataclass(frozen=True)
class Score(_AfterTraining):
    kind: ClassVar[str] = "score"
    writes: ClassVar[str] = "predictions"
    after: ClassVar[str] = "train"

    def output(self, ctx: Context) -> Any:
        from workbench.ml.score import predictions_path

        return table_version(predictions_path(ctx.ws, self.target))

    def run(self, ctx: Context) -> StepResult:
        from workbench.ml.steps import score_step

        out = score_step(
            ctx.catalog, ctx.ws, self.target, force=ctx.forced, incremental=ctx.incremental
        )
        return _ml_result(self, out)


@step_kind
@dataclass(frozen=True)
class Monitor(_AfterTraining):
    kind: ClassVar[str] = "monitor"
    writes: ClassVar[str] = "monitoring"
    after: ClassVar[str] = "score"

    def output(self, ctx: Context) -> Any:
        from workbench.ml.drift import drift_reports

        return len(drift_reports(ctx.ws, self.target)) or None

    def run(self, ctx: Context) -> StepResult:
        from workbench.ml.steps import monitor_step

        return _ml_result(self, monitor_step(ctx.catalog, ctx.ws, self.target, force=ctx.forced))


def _ml_result(step: Step, out: dict[str, Any]) -> StepResult:
    status = "reused" if out.pop("reused") else "succeeded"
    return StepResult(step.name, status, 0.0, rows_out=out.get("rows"), details=out)
