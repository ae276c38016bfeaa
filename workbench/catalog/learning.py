"""Pydantic models of the catalog's ``features:`` and ``models:`` sections: feature sets, their
splits and lags, estimators, tuning spaces, drift monitoring and retraining policies.
``workbench.ml`` executes them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from workbench.catalog.base import _as_list, _Strict
from workbench.catalog.expressions import ExpressionText, expression_columns


class Split(_Strict):
    """How rows are assigned to train / validation / test.

    ``kind: time`` (the default): rows before ``validation_from`` train, rows from
    ``validation_from`` to ``test_from`` validate, later rows test. ``kind: random``: a stable
    hash of the row's keys (or all its features) with ``seed`` picks the set, so the split does
    not depend on partitioning.
    """

    kind: Literal["time", "random"] = "time"
    column: str | None = None
    validation_from: dt.date | None = None
    test_from: dt.date | None = Field(
        None, description="rows on or after this date form the test set"
    )
    validation_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _kind_fields(self) -> Split:
        if self.kind == "time":
            if self.column is None or self.test_from is None:
                raise ValueError("a time split needs `column` and `test_from`")
            if self.validation_from and self.validation_from >= self.test_from:
                raise ValueError("`validation_from` must come before `test_from`")
        elif self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("`validation_fraction` + `test_fraction` must leave rows to train on")
        return self


class Lag(_Strict):
    """A value from earlier rows of the same key, the data ordered by ``order_by``.

    ``window`` absent: the value ``periods`` rows back. ``window: N``: ``agg`` over the N rows
    before the current one (the current row is never included, so nothing leaks).
    """

    column: str
    by: list[str]
    order_by: str
    periods: int = Field(1, ge=1)
    window: int | None = Field(None, ge=1)
    agg: Literal["mean", "sum", "min", "max", "count"] = "mean"

    _list = field_validator("by", mode="before")(_as_list)

    @property
    def inputs(self) -> list[str]:
        return [self.column, *self.by, self.order_by]


DatePart = Literal["year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "weekend"]


class FeatureSet(_Strict):
    """Model inputs materialised as a versioned ``features/<name>`` table."""

    source: str
    label: str
    columns: list[str] = Field(description="source columns used as features as they are")
    categorical: list[str] = Field(default_factory=list)
    derived: dict[str, ExpressionText] = Field(
        default_factory=dict, description="name -> expression over source columns"
    )
    date_parts: dict[str, list[DatePart]] = Field(
        default_factory=dict, description="datetime column -> parts, named <column>_<part>"
    )
    lags: dict[str, Lag] = Field(default_factory=dict)
    keys: list[str] = Field(
        default_factory=list, description="columns identifying a row; carried to predictions"
    )
    where: ExpressionText | None = Field(
        None, description="row filter (docs/expressions.md) before anything else"
    )
    split: Split

    @model_validator(mode="after")
    def _names(self) -> FeatureSet:
        missing = sorted(set(self.categorical) - set(self.features))
        if missing:
            raise ValueError(f"categorical columns {missing} are not features of this set")
        if self.split.kind == "random" and not self.keys:
            raise ValueError("a random split hashes the row `keys`: list them")
        return self

    @property
    def features(self) -> list[str]:
        """Every model input, in a fixed order: columns, derived, date parts, lags."""
        parts = [f"{c}_{p}" for c, ps in self.date_parts.items() for p in ps]
        names = [*self.columns, *self.derived, *parts, *self.lags]
        return [n for n in dict.fromkeys(names) if n != self.label]  # a derived label is no input

    def source_columns(self, known: set[str]) -> list[str]:
        names = [*self.keys, *self.columns, self.label, *self.date_parts]
        names += [c for lag in self.lags.values() for c in lag.inputs]
        if self.split.column:
            names.append(self.split.column)
        for expr in [self.where, *self.derived.values()]:
            names += expression_columns(expr)
        return [c for c in dict.fromkeys(names) if c in known]


# The estimator registry: each catalog ``estimator:`` name and the task it learns, declared
# here once; ``workbench.ml.estimators`` implements each name. ``sklearn`` learns the model's
# declared ``sklearn_task``.
ESTIMATOR_TASKS: dict[str, Literal["classification", "regression"] | None] = {
    "lightgbm_classifier": "classification",
    "lightgbm_regressor": "regression",
    "logistic_regression": "classification",
    "linear_regression": "regression",
    "sgd_classifier": "classification",
    "sgd_regressor": "regression",
    "sklearn": None,
}
ESTIMATORS = tuple(ESTIMATOR_TASKS)


class SearchRange(_Strict):
    low: float
    high: float
    log: bool = False
    integer: bool = False


class Tuning(_Strict):
    """A search space; ``method: auto`` is Hyperband for SGD estimators, random otherwise."""

    method: Literal["auto", "random", "grid", "hyperband"] = "auto"
    space: dict[str, list[Any] | SearchRange]
    n_iter: int = Field(8, ge=1, description="configurations tried by random search")
    max_iter: int = Field(27, ge=1, description="Hyperband's largest number of epochs")
    metric: str | None = Field(None, description="validation metric; default the promotion one")


class Monitor(_Strict):
    """Drift thresholds. A numeric feature drifts past ``psi`` or ``ks``; a categorical one past
    ``psi``, or when chi-square's p-value is below ``chi2_pvalue`` with Cramer's V above
    ``cramers_v`` (large windows make tiny shifts significant, so an effect size is needed too).
    The alert fires when more than ``max_drifted_features`` drift, predictions drift past
    ``prediction_psi``, or the metric falls by more than ``performance_drop`` (absolute for
    AUC, relative for RMSE)."""

    bins: int = Field(10, ge=2, le=100)
    psi: float = Field(0.2, gt=0)
    ks: float = Field(0.15, gt=0, le=1)
    chi2_pvalue: float = Field(0.001, gt=0, lt=1)
    cramers_v: float = Field(0.1, gt=0, le=1, description="effect size a categorical shift needs")
    prediction_psi: float = Field(0.2, gt=0)
    performance_drop: float = Field(0.05, gt=0, description="largest allowed metric loss")
    max_drifted_features: int = Field(0, ge=0, description="alert when more features drift")
    ignore: list[str] = Field(
        default_factory=list, description="features reported but never alerting (e.g. month)"
    )
    every: Literal["day", "week", "month", "quarter"] = Field(
        "month", description="window of the pipeline's monitor step, after the training rows"
    )


class Retrain(_Strict):
    """When ``workbench run`` retrains: on drift, on performance decay, on a schedule."""

    when: list[Literal["drift", "performance", "schedule", "new_data"]] = Field(
        default_factory=lambda: ["new_data"]
    )
    every: str | None = Field(None, pattern=r"^\d+\s*[hdw]$", description="e.g. 30d")

    _list = field_validator("when", mode="before")(_as_list)

    @model_validator(mode="after")
    def _schedule(self) -> Retrain:
        if "schedule" in self.when and self.every is None:
            raise ValueError("`when: schedule` needs `every` (e.g. 30d)")
        return self


class Model(_Strict):
    feature_set: str
    estimator: Literal[ESTIMATORS] = "lightgbm_classifier"
    sklearn_class: str | None = Field(
        None, description="with estimator: sklearn, e.g. sklearn.ensemble.RandomForestClassifier"
    )
    sklearn_task: Literal["classification", "regression"] = "classification"
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 42
    metric: str | None = Field(None, description="promotion metric; roc_auc or rmse by default")
    promote_margin: float = Field(0.0, ge=0, description="a candidate must win by this much")
    checkpoint_every: int = Field(50, ge=1, description="iterations or epochs per checkpoint")
    tune: Tuning | None = None
    monitor: Monitor = Field(default_factory=Monitor)
    retrain: Retrain = Field(default_factory=Retrain)

    @model_validator(mode="after")
    def _sklearn_class(self) -> Model:
        if (self.estimator == "sklearn") != (self.sklearn_class is not None):
            raise ValueError("give `sklearn_class` exactly when `estimator: sklearn`")
        if self.sklearn_class and not self.sklearn_class.startswith("sklearn."):
            raise ValueError("`sklearn_class` must name a class of scikit-learn (sklearn.*)")
        return self

    @property
    def task(self) -> str:
        """classification or regression (for `sklearn`, the declared `task`)."""
        return ESTIMATOR_TASKS[self.estimator] or self.sklearn_task

    @property
    def promotion_metric(self) -> str:
        return self.metric or ("roc_auc" if self.task == "classification" else "rmse")


# --- the catalog -------------------------------------------------------------------------------
