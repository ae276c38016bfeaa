"""Promotion: a version becomes ``production`` only when it beats production on the same test
rows (the candidate's) by the catalog's margin, or when forced."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.ml.metrics import better
from workbench.ml.registry import aliases, load_predictor, model_metadata, set_alias
from workbench.ml.train import evaluate, model_spec, score_rows, split_rows


@dataclass(frozen=True)
class Promotion:
    name: str
    version: int
    promoted: bool
    metric: str
    candidate_score: float | None
    production_version: int | None
    production_score: float | None
    margin: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_on_test(
    ws: Workspace, name: str, candidate: int, production: int, metric: str
) -> tuple[float, float]:
    """Both versions scored on the candidate's test rows; returns (candidate, production)."""
    new = load_predictor(ws, name, candidate)
    old = load_predictor(ws, name, production)
    data = new.fit_info["data"]
    test = split_rows(ws, data["feature_set"], data["feature_version"], "test")
    label = new.fit_info["label"]
    scores = []
    for predictor in (new, old):
        metrics, _ = evaluate(predictor, score_rows(test, predictor, label))
        scores.append(metrics[metric])
    return scores[0], scores[1]


def promote_model(
    catalog: Catalog, ws: Workspace, name: str, version: int | None = None, *, force: bool = False
) -> Promotion:
    """Make ``version`` (default: the candidate) production if it wins, or if ``force``.

    A losing version is refused: the result has ``promoted=False`` and says why; production
    does not move.

    Examples
    --------
    >>> promote_model(catalog, ws, "departure_delay").promoted  # doctest: +SKIP
    True
    """
    spec = model_spec(catalog, name)
    held = aliases(ws, name)
    version = version or held.get("candidate")
    if version is None:
        from workbench.errors import ModelNotFound

        raise ModelNotFound(
            f"model {name!r} has no candidate; train one with `workbench run {name}`."
        )
    current = held.get("production")
    metric, margin = spec.promotion_metric, spec.promote_margin

    def result(promoted: bool, new: float | None, old: float | None, reason: str) -> Promotion:
        if promoted:
            set_alias(ws, name, "production", version, reason)
        return Promotion(name, version, promoted, metric, new, current, old, margin, reason)

    if current == version:
        return Promotion(
            name,
            version,
            False,
            metric,
            None,
            current,
            None,
            margin,
            f"version {version} is already production",
        )
    if current is None:
        return _first_version(ws, name, version, metric, force, result)
    new, old = compare_on_test(ws, name, version, current, metric)
    if force:
        return result(True, new, old, "forced")
    if better(metric, new, old, margin):
        return result(True, new, old, f"{metric} {new:.4f} beats {old:.4f} by more than {margin}")
    return result(
        False,
        new,
        old,
        f"refused: {metric} {new:.4f} does not beat production v{current}'s {old:.4f} on the "
        f"same test rows by the margin {margin}; use --force to promote anyway",
    )


def _first_version(ws: Workspace, name: str, version: int, metric: str, force: bool, result):
    """With no production to beat, a version must beat its own baseline (a constant predictor)
    on the promotion metric: a model worse than guessing must not serve without a word."""
    metrics = model_metadata(ws, name, version)["metrics"]
    new, baseline = metrics.get(metric), metrics.get(f"baseline_{metric}")
    if force or baseline is None or new is None:
        return result(True, new, baseline, "forced" if force else "first production version")
    if better(metric, new, baseline):
        return result(
            True,
            new,
            baseline,
            f"first production version: {metric} {new:.4f} beats the baseline's {baseline:.4f}",
        )
    return result(
        False,
        new,
        baseline,
        f"stays a candidate: {metric} {new:.4f} does not beat the baseline's {baseline:.4f} "
        f"(a constant predictor) on the test rows; check the label and features, or "
        f"`workbench model promote {name} --version {version} --force`",
    )
