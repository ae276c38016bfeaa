"""Pydantic models of ``data_catalog.yaml``: what the pipeline is, never how it runs.

Rules, joins, derivations, cubes and models are declared here; ``workbench.validation``,
``workbench.zones``, ``workbench.cubes`` and ``workbench.ml`` execute them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from workbench.catalog.base import _as_list, _Strict
from workbench.catalog.expressions import ExpressionText
from workbench.catalog.learning import (  # noqa: F401 - re-exported: the catalog's public models
    ESTIMATORS,
    FeatureSet,
    Lag,
    Model,
    Monitor,
    Retrain,
    SearchRange,
    Split,
    Tuning,
)
from workbench.errors import CubeNotFound, DatasetNotFound

ColumnType = Literal["int", "float", "string", "bool", "datetime", "date"]
Severity = Literal["error", "warn"]


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
    across: Literal["batch", "lake"] = Field(
        "batch",
        description="batch: keys unique within each batch; lake: also against the keys the "
        "lake already holds from other batches (for append loads)",
    )

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
    expr: ExpressionText = Field(
        description="a boolean expression (docs/expressions.md) true for good rows"
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

    def column_map(self, right_columns: Iterable[str]) -> dict[str, str]:
        """Right-hand column -> its name after the join: the declared ``columns`` (an empty list
        brings none: the join only filters), else every right column but the keys."""
        if self.columns is None:
            return {c: c for c in right_columns if c not in self.right_keys}
        if isinstance(self.columns, list):
            return {c: c for c in self.columns}
        return dict(self.columns)


class Derivation(_Strict):
    """One derived column: exactly one of the fields is set."""

    expr: ExpressionText | None = Field(
        None, description="an expression over columns (docs/expressions.md)"
    )
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


class Pii(_Strict):
    """How columns tagged ``pii`` are masked for users without the ``pii`` permission.

    ``hash`` keeps values comparable (equal inputs give equal outputs, so counts and joins still
    work) with an HMAC whose key comes from ``WORKBENCH_PII_KEY``, never from the catalog;
    ``redact`` replaces every value.
    """

    mask: Literal["hash", "redact"] = "hash"


def _entries(tagged: dict[str, dict], key: str) -> dict[str, list[str]]:
    return {k: _as_list(v[key]) for k, v in tagged.items() if v.get(key) is not None}


class Dataset(_Strict):
    """A table of the lake (``zone: lake``, from a landed source) or a curated table."""

    zone: Literal["lake", "curated"]
    description: str = ""
    source: Source | None = None
    schema_: dict[str, ColumnType] = Field(default_factory=dict, alias="schema")
    column_tags: dict[str, list[str]] = Field(
        default_factory=dict, description="filled from the tagged form of `schema`"
    )
    column_na_values: dict[str, list[str]] = Field(
        default_factory=dict,
        description="filled from `na_values` in the mapping form of `schema`: texts read as "
        "missing in that column, instead of `source.na_values`",
    )
    pii: Pii | None = Field(None, description="masking of pii columns; default: the catalog's")
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

    @model_validator(mode="before")
    @classmethod
    def _tagged_schema(cls, data: Any) -> Any:
        """Split ``{type, tags, na_values}`` entries into the plain type, ``column_tags`` and
        ``column_na_values``, so the rest of the workbench keeps reading ``schema_`` as
        column -> type."""
        schema = data.get("schema") if isinstance(data, dict) else None
        if not isinstance(schema, dict) or not any(isinstance(v, dict) for v in schema.values()):
            return data
        if "column_tags" in data or "column_na_values" in data:
            raise ValueError(
                "tag columns and give their missing-value texts in `schema` "
                '({type: string, tags: [pii], na_values: [""]})'
            )
        tagged = {k: v for k, v in schema.items() if isinstance(v, dict)}
        for column, entry in tagged.items():
            if set(entry) - {"type", "tags", "na_values"} or "type" not in entry:
                raise ValueError(
                    f"schema column `{column}`: give {{type: float, tags: [pii], "
                    f'na_values: ["", "N/A"]}} (type required; got keys {sorted(entry)})'
                )
        return {
            **data,
            "schema": {k: v["type"] if k in tagged else v for k, v in schema.items()},
            "column_tags": _entries(tagged, "tags"),
            "column_na_values": _entries(tagged, "na_values"),
        }

    def na_values(self) -> dict[str, tuple[str, ...]]:
        """Per schema column, the texts read as missing: its own ``na_values`` if the schema
        gives them, else the source's."""
        default = tuple(self.source.na_values) if self.source else ()
        return {c: tuple(self.column_na_values.get(c, default)) for c in self.schema_}

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
    where: ExpressionText | None = Field(
        None, description="count or sum only rows where this is true (docs/expressions.md)"
    )

    @model_validator(mode="after")
    def _column(self) -> Measure:
        if self.column is None and self.agg != "count":
            raise ValueError(f"agg `{self.agg}` needs a `column`")
        return self


class Cube(_Strict):
    source: str
    dimensions: dict[str, Dimension]
    measures: dict[str, Measure]
    derived_measures: dict[str, ExpressionText] = Field(
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


class Catalog(_Strict):
    version: Literal[1] = 1
    workspace: str = "./workspace"
    vars: dict[str, str] = Field(default_factory=dict)
    datasets: dict[str, Dataset]
    cubes: dict[str, Cube] = Field(default_factory=dict)
    features: dict[str, FeatureSet] = Field(default_factory=dict)
    models: dict[str, Model] = Field(default_factory=dict)
    pii: Pii = Field(default_factory=Pii, description="masking of pii columns (hash or redact)")
    _path: Path | None = PrivateAttr(None)

    @property
    def path(self) -> Path | None:
        """The file the catalog was read from (None when built in memory)."""
        return self._path

    def names(self) -> list[str]:
        return [*self.datasets, *self.cubes, *self.features, *self.models]

    def dataset(self, name: str) -> Dataset:
        """The dataset ``name``; DatasetNotFound lists the known ones."""
        return _entry(self.datasets, name, "dataset", "datasets", DatasetNotFound)

    def cube(self, name: str) -> Cube:
        return _entry(self.cubes, name, "cube", "cubes", CubeNotFound)

    def feature_set(self, name: str) -> FeatureSet:
        return _entry(self.features, name, "feature set", "features", DatasetNotFound)

    def model(self, name: str) -> Model:
        return _entry(self.models, name, "model", "models", DatasetNotFound)


def _entry(entries: dict[str, Any], name: str, kind: str, section: str, error: type) -> Any:
    """The one lookup of a name a user gave: the error names the known entries and the key."""
    try:
        return entries[name]
    except KeyError:
        raise error(
            f"no {kind} named {name!r} in the catalog; known: {', '.join(entries) or 'none'}. "
            f"Check the spelling, or declare it under `{section}:`."
        ) from None
