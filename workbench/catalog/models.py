"""Pydantic models of ``data_catalog.yaml``: what the pipeline is, never how it runs.

Rules, joins, derivations, cubes and models are declared here; ``workbench.validation``,
``workbench.zones``, ``workbench.cubes`` and ``workbench.ml`` execute them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

ColumnType = Literal["int", "float", "string", "bool", "datetime", "date"]
Severity = Literal["error", "warn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# --- rules -------------------------------------------------------------------------------------


class _Rule(_Strict):
    severity: Severity = "error"
    name: str | None = Field(None, description="reason code; defaults to '<rule>:<column>'")


class NotNull(_Rule):
    rule: Literal["not_null"]
    columns: list[str]

    _list = field_validator("columns", mode="before")(_as_list)


class Between(_Rule):
    rule: Literal["between"]
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Between:
        if self.min is None and self.max is None:
            raise ValueError("give at least one of `min` and `max`")
        return self


class InSet(_Rule):
    rule: Literal["in_set"]
    column: str
    values: list[Any]


class References(_Rule):
    rule: Literal["references"]
    column: str
    dataset: str
    key: str


class Unique(_Rule):
    rule: Literal["unique"]
    columns: list[str]

    _list = field_validator("columns", mode="before")(_as_list)


class Min(_Rule):
    rule: Literal["min"]
    column: str
    value: float


class Max(_Rule):
    rule: Literal["max"]
    column: str
    value: float


class Length(_Rule):
    rule: Literal["length"]
    column: str
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class NotInFuture(_Rule):
    rule: Literal["not_in_future"]
    column: str


class Castable(_Rule):
    rule: Literal["castable"]
    column: str
    to: ColumnType


class Regex(_Rule):
    rule: Literal["regex"]
    column: str
    pattern: str


class Expression(_Rule):
    rule: Literal["expression"]
    expr: str = Field(
        description="a vectorised boolean expression (pandas.eval) true for good rows"
    )


Rule = Annotated[
    NotNull
    | Between
    | Min
    | Max
    | InSet
    | References
    | Unique
    | Regex
    | Length
    | NotInFuture
    | Castable
    | Expression,
    Field(discriminator="rule"),
]


class RowCount(_Rule):
    """The batch's row count within bounds, or within a percentage of the previous batch."""

    rule: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)
    max_change_pct: float | None = Field(None, gt=0)


class Freshness(_Rule):
    """The newest value of a timestamp column is not older than ``max_age`` (e.g. 30d, 12h)."""

    rule: Literal["freshness"]
    column: str
    max_age: str = Field(pattern=r"^\d+(\.\d+)?\s*[smhdw]$")


class SchemaDrift(_Rule):
    """Columns in the file header that the schema does not declare (missing ones fail rows)."""

    rule: Literal["schema_drift"]


DatasetRule = Annotated[RowCount | Freshness | SchemaDrift, Field(discriminator="rule")]


# --- datasets ----------------------------------------------------------------------------------


class Source(_Strict):
    path: str = Field(description="file path, glob, or pkg://PACKAGE/PATH")
    format: Literal["csv"] = "csv"
    delimiter: str = Field(",", min_length=1, max_length=1)
    na_values: list[str] = Field(
        default_factory=lambda: ["", "NA", "N/A", "NULL", "null", "NaN", "nan"],
        description="texts read as missing values",
    )


class Join(_Strict):
    dataset: str
    keys: list[str] | None = Field(None, description="columns with the same name on both sides")
    left_on: list[str] | None = None
    right_on: list[str] | None = None
    how: Literal["left", "inner"] = "left"
    columns: dict[str, str] | list[str] | None = Field(
        None, description="columns to bring (a list, or a mapping source -> new name)"
    )

    _lists = field_validator("keys", "left_on", "right_on", mode="before")(_as_list)

    @model_validator(mode="after")
    def _keys(self) -> Join:
        if self.keys is None and (self.left_on is None or self.right_on is None):
            raise ValueError("give `keys`, or both `left_on` and `right_on`")
        if self.keys is not None and (self.left_on or self.right_on):
            raise ValueError("give either `keys` or `left_on`/`right_on`, not both")
        if self.left_on and len(self.left_on) != len(self.right_on or []):
            raise ValueError("`left_on` and `right_on` need the same number of columns")
        return self

    @property
    def left_keys(self) -> list[str]:
        return list(self.keys or self.left_on or [])

    @property
    def right_keys(self) -> list[str]:
        return list(self.keys or self.right_on or [])

    def renames(self) -> dict[str, str] | None:
        if self.columns is None:
            return None
        if isinstance(self.columns, list):
            return {c: c for c in self.columns}
        return dict(self.columns)


class Derivation(_Strict):
    """One derived column: exactly one of the fields is set."""

    expr: str | None = Field(None, description="pandas.eval expression over columns")
    is_null: str | None = Field(None, description="true where the column is missing")
    make_date: list[str] | None = Field(None, description="[year, month, day] columns -> date")

    @model_validator(mode="after")
    def _one(self) -> Derivation:
        given = [k for k in ("expr", "is_null", "make_date") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of expr, is_null, make_date (got {given or 'none'})"
            )
        return self

    @property
    def inputs(self) -> list[str]:
        if self.is_null is not None:
            return [self.is_null]
        return list(self.make_date or [])


class Thresholds(_Strict):
    max_quarantined_fraction: float = Field(1.0, ge=0, le=1)


class Dataset(_Strict):
    """A table of the lake (``zone: lake``, from a landed source) or a curated table."""

    zone: Literal["lake", "curated"]
    description: str = ""
    source: Source | None = None
    schema_: dict[str, ColumnType] = Field(default_factory=dict, alias="schema")
    keys: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    dataset_rules: list[DatasetRule] = Field(default_factory=list)
    load: Literal["replace", "append"] = Field(
        "replace", description="replace: each batch is a full snapshot; append: batches add rows"
    )
    retention: str | None = Field(
        None, pattern=r"^\d+\s*[dw]$", description="keep landed batches this long (e.g. 30d)"
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    from_: str | None = Field(None, alias="from")
    joins: list[Join] = Field(default_factory=list)
    derived: dict[str, Derivation] = Field(default_factory=dict)

    @field_validator("derived", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"expr": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _zone_fields(self) -> Dataset:
        if self.zone == "lake":
            if self.source is None or not self.schema_:
                raise ValueError("a lake dataset needs `source` and `schema`")
            if self.from_ or self.joins or self.derived:
                raise ValueError("`from`, `joins` and `derived` belong to curated datasets")
        if self.zone == "curated" and self.from_ is None:
            raise ValueError("a curated dataset needs `from: <dataset>`")
        return self

    def upstream(self) -> list[str]:
        names = [self.from_] if self.from_ else []
        names += [j.dataset for j in self.joins]
        names += [r.dataset for r in self.rules if isinstance(r, References)]
        return list(dict.fromkeys(names))


# --- cubes -------------------------------------------------------------------------------------


class Labels(_Strict):
    dataset: str
    key: str
    label: str


TimeLevel = Literal["year", "quarter", "month", "day", "hour"]
TIME_LEVELS: tuple[str, ...] = ("year", "quarter", "month", "day", "hour")


class Dimension(_Strict):
    """One cube dimension and its hierarchy, coarse to fine; the finest level is stored.

    A time dimension names time ``levels`` of a datetime column (``[year, quarter, month]``
    keeps months and can roll up to quarters and years). A categorical dimension may name
    ``parents``: source columns of coarser levels that each member belongs to exactly once
    (``nation`` with ``parents: [region]``).
    """

    column: str
    levels: list[TimeLevel] | None = None
    parents: list[str] = Field(default_factory=list)
    labels: Labels | None = None

    @model_validator(mode="after")
    def _hierarchy(self) -> Dimension:
        if self.levels is not None:
            if not self.levels:
                raise ValueError("`levels` needs at least one time level")
            order = [TIME_LEVELS.index(level) for level in self.levels]
            if order != sorted(set(order)):
                raise ValueError(
                    f"time levels go coarse to fine without repeats, in the order "
                    f"{', '.join(TIME_LEVELS)} (got {self.levels})"
                )
            if self.parents:
                raise ValueError("a time dimension has `levels`, not `parents`")
        return self

    def level_names(self, key: str) -> list[str]:
        """Names of the levels, coarse to fine; the last is the stored grain."""
        return list(self.levels) if self.levels else [*self.parents, key]

    def grain(self, key: str) -> str:
        return self.level_names(key)[-1]


class Measure(_Strict):
    agg: Literal["sum", "count", "min", "max"]
    column: str | None = Field(None, description="omit with agg: count to count rows")
    where: str | None = Field(None, description="count or sum only rows where this is true")

    @model_validator(mode="after")
    def _column(self) -> Measure:
        if self.column is None and self.agg != "count":
            raise ValueError(f"agg `{self.agg}` needs a `column`")
        return self


class Cube(_Strict):
    source: str
    dimensions: dict[str, Dimension]
    measures: dict[str, Measure]
    derived_measures: dict[str, str] = Field(
        default_factory=dict, description="name -> expression over stored measures, e.g. a / b"
    )
    aggregates: list[list[str]] | None = Field(
        None,
        description="coarser cuboids to pre-compute, each a list of levels to keep; "
        "omitted: each coarser time level with the other dimensions, and each dimension alone",
    )
    keep_versions: int = Field(3, ge=1)

    def levels(self) -> dict[str, tuple[str, str]]:
        """level name -> (dimension key, kind) with kind 'grain' or 'parent'."""
        out = {}
        for key, dim in self.dimensions.items():
            names = dim.level_names(key)
            for name in names:
                out[name] = (key, "grain" if name == names[-1] else "parent")
        return out


# --- features and models -----------------------------------------------------------------------


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
    derived: dict[str, str] = Field(
        default_factory=dict, description="name -> pandas.eval expression over source columns"
    )
    date_parts: dict[str, list[DatePart]] = Field(
        default_factory=dict, description="datetime column -> parts, named <column>_<part>"
    )
    lags: dict[str, Lag] = Field(default_factory=dict)
    keys: list[str] = Field(
        default_factory=list, description="columns identifying a row; carried to predictions"
    )
    where: str | None = Field(None, description="row filter (pandas.eval) before anything else")
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
        from workbench.catalog.load import expression_names

        names = [*self.keys, *self.columns, self.label, *self.date_parts]
        names += [c for lag in self.lags.values() for c in lag.inputs]
        if self.split.column:
            names.append(self.split.column)
        for expr in [self.where, *self.derived.values()]:
            names += [c for c in expression_names(expr) if c in known]
        return [c for c in dict.fromkeys(names) if c in known]


ESTIMATORS = (
    "lightgbm_classifier",
    "lightgbm_regressor",
    "logistic_regression",
    "linear_regression",
    "sgd_classifier",
    "sgd_regressor",
    "sklearn",
)


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
        if self.estimator == "sklearn":
            return self.sklearn_task
        regress = self.estimator.endswith("regressor") or self.estimator == "linear_regression"
        return "regression" if regress else "classification"

    @property
    def promotion_metric(self) -> str:
        return self.metric or ("roc_auc" if self.task == "classification" else "rmse")


# --- the catalog -------------------------------------------------------------------------------


class Catalog(_Strict):
    version: Literal[1] = 1
    workspace: str = "./workspace"
    vars: dict[str, str] = Field(default_factory=dict)
    datasets: dict[str, Dataset]
    cubes: dict[str, Cube] = Field(default_factory=dict)
    features: dict[str, FeatureSet] = Field(default_factory=dict)
    models: dict[str, Model] = Field(default_factory=dict)
    _path: Path | None = PrivateAttr(None)

    @property
    def path(self) -> Path | None:
        """The file the catalog was read from (None when built in memory)."""
        return self._path

    def names(self) -> list[str]:
        return [*self.datasets, *self.cubes, *self.features, *self.models]
