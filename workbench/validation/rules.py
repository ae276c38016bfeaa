"""The rule registry: one vectorised evaluator per rule type of the catalog.

An evaluator takes a typed pandas partition and returns ``{reason_code: failed_mask}``; it never
loops over rows. Rules that need to see the whole dataset (unique keys, foreign keys) read what
they need from a :class:`RuleContext` prepared once per batch and broadcast to every partition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.catalog.expressions import evaluate as evaluate_expression
from workbench.catalog.models import (
    Between,
    Castable,
    ColumnType,
    Expression,
    InSet,
    Length,
    Max,
    Min,
    NotInFuture,
    NotNull,
    References,
    Regex,
    Unique,
)
from workbench.errors import CatalogError

Masks = dict[str, pd.Series]


@dataclass(frozen=True)
class RuleContext:
    """What whole-dataset rules need, computed once per batch: valid keys and duplicate keys."""

    reference_keys: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    duplicate_keys: dict[tuple[str, ...], pd.Index] = field(default_factory=dict)


Evaluator = Callable[[pd.DataFrame, object, RuleContext], Masks]
_EVALUATORS: dict[type, Evaluator] = {}


def register(rule_type: type) -> Callable[[Evaluator], Evaluator]:
    """Decorator registering the evaluator of one catalog rule type."""

    def wrap(func: Evaluator) -> Evaluator:
        _EVALUATORS[rule_type] = func
        return func

    return wrap


def evaluate(rule: object, df: pd.DataFrame, ctx: RuleContext) -> Masks:
    try:
        evaluator = _EVALUATORS[type(rule)]
    except KeyError:
        known = ", ".join(sorted(t.__name__ for t in _EVALUATORS))
        raise CatalogError(f"no evaluator for rule {type(rule).__name__}; known: {known}") from None
    return evaluator(df, rule, ctx)


def reason_code(rule: object, column: str | None) -> str:
    if rule.name:
        return rule.name
    return f"{rule.rule}:{column}" if column else rule.rule


@register(NotNull)
def _not_null(df: pd.DataFrame, rule: NotNull, ctx: RuleContext) -> Masks:
    return {reason_code(rule, c): df[c].isna() for c in rule.columns}


@register(Between)
def _between(df: pd.DataFrame, rule: Between, ctx: RuleContext) -> Masks:
    values = df[rule.column]
    bad = pd.Series(False, index=df.index)
    if rule.min is not None:
        bad |= (values < rule.min).fillna(False)
    if rule.max is not None:
        bad |= (values > rule.max).fillna(False)
    return {reason_code(rule, rule.column): bad.astype(bool)}


@register(Min)
def _min(df: pd.DataFrame, rule: Min, ctx: RuleContext) -> Masks:
    return {
        reason_code(rule, rule.column): (df[rule.column] < rule.value).fillna(False).astype(bool)
    }


@register(Max)
def _max(df: pd.DataFrame, rule: Max, ctx: RuleContext) -> Masks:
    return {
        reason_code(rule, rule.column): (df[rule.column] > rule.value).fillna(False).astype(bool)
    }


@register(Length)
def _length(df: pd.DataFrame, rule: Length, ctx: RuleContext) -> Masks:
    size = df[rule.column].astype("str").str.len()
    bad = pd.Series(False, index=df.index)
    if rule.min is not None:
        bad |= (size < rule.min).fillna(False)
    if rule.max is not None:
        bad |= (size > rule.max).fillna(False)
    return {reason_code(rule, rule.column): bad.astype(bool)}


@register(NotInFuture)
def _not_in_future(df: pd.DataFrame, rule: NotInFuture, ctx: RuleContext) -> Masks:
    values = df[rule.column]
    now = pd.Timestamp.now(tz="UTC")
    if getattr(values.dt, "tz", None) is None:
        now = now.tz_localize(None)
    return {reason_code(rule, rule.column): (values > now).fillna(False).astype(bool)}


@register(Castable)
def _castable(df: pd.DataFrame, rule: Castable, ctx: RuleContext) -> Masks:
    text = df[rule.column].astype("str")
    return {reason_code(rule, rule.column): text.notna() & CASTS[rule.to](text).isna()}


@register(InSet)
def _in_set(df: pd.DataFrame, rule: InSet, ctx: RuleContext) -> Masks:
    values = df[rule.column]
    return {reason_code(rule, rule.column): values.notna() & ~values.isin(rule.values)}


@register(References)
def _references(df: pd.DataFrame, rule: References, ctx: RuleContext) -> Masks:
    keys = ctx.reference_keys[(rule.dataset, rule.key)]
    values = df[rule.column]
    return {reason_code(rule, rule.column): values.notna() & ~values.isin(keys)}


@register(Unique)
def _unique(df: pd.DataFrame, rule: Unique, ctx: RuleContext) -> Masks:
    dups = ctx.duplicate_keys[tuple(rule.columns)]
    key = (
        df[rule.columns[0]]
        if len(rule.columns) == 1
        else pd.MultiIndex.from_frame(df[rule.columns])
    )
    bad = np.asarray(pd.Index(key).isin(dups)) if len(dups) else np.zeros(len(df), bool)
    return {reason_code(rule, ",".join(rule.columns)): pd.Series(bad, index=df.index)}


@register(Regex)
def _regex(df: pd.DataFrame, rule: Regex, ctx: RuleContext) -> Masks:
    values = df[rule.column].astype("str")  # regex rules test the text of any column
    ok = values.str.fullmatch(rule.pattern).fillna(True).astype(bool)
    return {reason_code(rule, rule.column): df[rule.column].notna() & ~ok}


@register(Expression)
def _expression(df: pd.DataFrame, rule: Expression, ctx: RuleContext) -> Masks:
    ok = evaluate_expression(rule.expr, df)
    # A row where the expression cannot be decided (missing values) has not been shown good.
    return {reason_code(rule, None): ~ok.fillna(False).astype(bool)}


# --- casting text to the declared types ---------------------------------------------------------


# Text that parses as a number, decided by RE2 over the whole column before Arrow's cast, so
# one bad value costs one null instead of an exception (Arrow has no per-value "coerce").
_INT = r"^\s*[+-]?\d+\s*$"
_FLOAT = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def _arrow_text(text: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pa.array(text.astype("str"), from_pandas=True)


def _to_float(text: pd.Series) -> pd.Series:
    arr = _arrow_text(text)
    try:
        numbers = pc.cast(
            pc.if_else(pc.match_substring_regex(arr, _FLOAT), pc.utf8_trim_whitespace(arr), None),
            pa.float64(),
        )
    except pa.ArrowInvalid:  # a form the pattern admits but Arrow does not: the slow way
        return pd.to_numeric(text, errors="coerce").astype("float64")
    return pd.Series(numbers.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")


def _to_int(text: pd.Series) -> pd.Series:
    arr = _arrow_text(text)
    whole = pc.match_substring_regex(arr, _INT)
    try:
        ints = pc.cast(pc.if_else(whole, pc.utf8_trim_whitespace(arr), None), pa.int64())
    except pa.ArrowInvalid:  # out of int64 range: the slow way
        num = pd.to_numeric(text, errors="coerce")
        return num.where(num.notna() & (num % 1 == 0)).astype("Int64")
    values = pd.Series(
        pd.array(ints.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), dtype="Int64"),
        index=text.index,
    )
    rest = ~np.asarray(whole.to_numpy(zero_copy_only=False), dtype=bool) & text.notna().to_numpy()
    if rest.any():  # "12.0" and "1e3" are whole numbers written as decimals
        floats = _to_float(text[rest])
        integral = floats.where(floats.notna() & (floats % 1 == 0))
        values[rest] = integral.astype("Int64")
    return values


def _to_bool(text: pd.Series) -> pd.Series:
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    return text.str.lower().map(mapping).astype("boolean")


def _to_datetime(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601").dt.as_unit("us")


def _to_date(text: pd.Series) -> pd.Series:
    # The common YYYY-MM-DD form through Arrow (a bad value becomes null), the rest via pandas.
    parsed = pc.strptime(_arrow_text(text), format="%Y-%m-%d", unit="us", error_is_null=True)
    values = pd.Series(parsed.to_pandas(), index=text.index).astype("datetime64[us]")
    rest = (text.notna() & values.isna()).to_numpy()
    if rest.any():
        other = pd.to_datetime(text[rest], errors="coerce", format="ISO8601")
        values[rest] = (
            other.dt.tz_localize(None).dt.normalize().dt.as_unit("us")
            if getattr(other.dt, "tz", None)
            else other.dt.normalize().dt.as_unit("us")
        )
    return values


CASTS: dict[ColumnType, Callable[[pd.Series], pd.Series]] = {
    "int": _to_int,
    "float": _to_float,
    "string": lambda text: text.astype("str"),
    "bool": _to_bool,
    "datetime": _to_datetime,
    "date": _to_date,
}


def cast_columns(raw: pd.DataFrame, schema: dict[str, ColumnType]) -> tuple[pd.DataFrame, Masks]:
    """Typed columns and, per column, the rows whose text did not parse as the declared type."""
    typed, failed = {}, {}
    for column, kind in schema.items():
        values = CASTS[kind](raw[column])
        typed[column] = values
        failed[f"dtype:{column}"] = raw[column].notna() & values.isna()
    return pd.DataFrame(typed, index=raw.index), failed
