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

    reference_keys: dict[tuple[str, str], KeySet] = field(default_factory=dict)
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
    values = df[rule.column]
    found = ctx.reference_keys[(rule.dataset, rule.key)].contains(values)
    return {reason_code(rule, rule.column): values.notna().to_numpy() & ~found}


@dataclass(frozen=True)
class KeySet:
    """The keys a ``references`` rule checks against, in the form fastest to look up: a bitmap
    over the range of dense integer keys (surrogate keys: one bit per key, built once per batch
    on the client; at TPC-H SF10 the 60M order keys take 7.5 MB, small enough to travel in the
    graph), text keys as an Arrow array (Arrow hashes them in C++ per partition, where pandas
    boxes every key of an Arrow-backed column first), else the keys themselves (pandas hashes
    them per partition)."""

    keys: np.ndarray | None = None
    low: int = 0
    bitmap: np.ndarray | None = None  # bit i of byte i // 8 (little bit order): key low + i
    text: pa.Array | None = None
    span: int = 0  # how many keys from ``low`` the bitmap covers

    @classmethod
    def of(cls, keys: np.ndarray) -> KeySet:
        keys = np.asarray(keys)
        if keys.dtype.kind in "iu" and len(keys):
            low, high = int(keys.min()), int(keys.max())
            if high - low <= 8 * len(keys) + 4096:
                present = np.zeros(high - low + 1, dtype=bool)
                present[keys.astype("int64") - low] = True
                bitmap = np.packbits(present, bitorder="little")
                return cls(None, low, bitmap, span=len(present))
        return cls(keys, text=_text_keys(keys))

    def contains(self, values: pd.Series) -> np.ndarray:
        if self.text is not None and is_arrow_text(values):
            found = pc.is_in(pa.array(values), value_set=self.text)
            return found.to_numpy(zero_copy_only=False)
        if self.bitmap is None or values.dtype.kind not in "iu":
            return values.isin(self._key_values()).to_numpy(dtype=bool)
        ints = values.to_numpy(dtype="int64", na_value=self.low - 1)
        inside = (ints >= self.low) & (ints < self.low + self.span)
        at = ints[inside] - self.low
        found = np.zeros(len(ints), dtype=bool)
        found[inside] = (self.bitmap[at >> 3] >> (at & 7).astype(np.uint8)) & 1
        return found

    def _key_values(self) -> np.ndarray:
        if self.bitmap is None:
            return self.keys
        present = np.unpackbits(self.bitmap, count=self.span, bitorder="little")
        return np.flatnonzero(present) + self.low


def _text_keys(keys: np.ndarray) -> pa.Array | None:
    """The keys as one Arrow text array when every key is a text, else None."""
    if keys.dtype.kind not in "OU":
        return None
    try:
        text = pa.array(keys)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # texts mixed with other objects
        return None
    return text if pa.types.is_string(text.type) or pa.types.is_large_string(text.type) else None


def is_arrow_text(values: pd.Series) -> bool:
    """Whether ``values`` is text held by Arrow (pandas' ``str``), not Python objects."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


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
    direct = _direct_cast(arr, pa.float64())
    if direct is not None:
        return _placed(direct, text, "float64")
    try:
        numbers = pc.cast(
            pc.if_else(pc.match_substring_regex(arr, _FLOAT), pc.utf8_trim_whitespace(arr), None),
            pa.float64(),
        )
    except pa.ArrowInvalid:  # a form the pattern admits but Arrow does not: the slow way
        numbers = pd.to_numeric(text.to_numpy(), errors="coerce")
    return _placed(np.asarray(numbers, dtype="float64"), text, "float64")


def _direct_cast(arr: pa.Array | pa.ChunkedArray, to: pa.DataType) -> object | None:
    """The whole column through Arrow's cast when every text is a plain number (the usual
    case: no pattern to match first); None when one is not, or when Arrow read a form the
    patterns above refuse (inf, nan), so that the checked path decides."""
    try:
        values = pc.cast(arr, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_integer(to):
        return values.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).array
    if pc.any(pc.invert(pc.is_finite(values))).as_py():
        return None
    return values.to_numpy(zero_copy_only=False)


# Whole numbers written as decimals ("12.0", "1e3") are ints only where float64 holds every
# integer exactly (below 2**53); a longer one is not read as an int rather than altered.
_EXACT_FLOAT_INT = 2.0**53
# Up to 18 digits always fits int64: Arrow casts those; longer digit strings are checked one by
# one (rare), so a single out-of-range value cannot send the whole partition another way.
_SHORT_INT = r"^\s*[+-]?\d{1,18}\s*$"


def _to_int(text: pd.Series) -> pd.Series:
    arr = _arrow_text(text)
    direct = _direct_cast(arr, pa.int64())
    if direct is not None:
        return _placed(pd.array(direct, dtype="Int64"), text, "Int64")
    whole = _mask(pc.match_substring_regex(arr, _INT))
    short = _mask(pc.match_substring_regex(arr, _SHORT_INT))
    ints = pc.cast(pc.if_else(short, pc.utf8_trim_whitespace(arr), None), pa.int64())
    values = pd.array(ints.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get))
    for i in np.flatnonzero(whole & ~short):
        number = int(text.iloc[i])
        values[i] = number if -(2**63) <= number < 2**63 else pd.NA
    rest = ~whole & text.notna().to_numpy()
    if rest.any():
        floats = _to_float(text[rest]).to_numpy()
        integral = np.isfinite(floats) & (floats % 1 == 0) & (np.abs(floats) < _EXACT_FLOAT_INT)
        values[np.flatnonzero(rest)[integral]] = floats[integral].astype("int64")
    return _placed(values, text, "Int64")


def _mask(flags: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool)


def _to_bool(text: pd.Series) -> pd.Series:
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    return text.str.lower().map(mapping).astype("boolean")


def _to_datetime(text: pd.Series) -> pd.Series:
    # Texts with a zone (2013-01-01T10:00:00Z) go through Arrow's ISO 8601 cast when it takes
    # the whole column, ten times faster than pandas; any other form (no zone, more than six
    # decimals, an impossible time) goes through pandas as before. Where both read a text,
    # they read the same instant.
    try:
        values = pc.cast(_arrow_text(text), pa.timestamp("us", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601").dt.as_unit("us")
    return _placed(values.to_pandas(), text, "datetime64[us, UTC]")


def _to_date(text: pd.Series) -> pd.Series:
    # The common YYYY-MM-DD form through Arrow, the rest via pandas.
    values = np.asarray(_arrow_dates(_arrow_text(text)), dtype="datetime64[us]")
    rest = text.notna().to_numpy() & np.isnat(values)
    if rest.any():
        other = pd.to_datetime(text[rest].to_numpy(), errors="coerce", format="ISO8601")
        other = other.tz_localize(None) if other.tz is not None else other
        values[rest] = other.normalize().to_numpy(dtype="datetime64[us]")
    return _placed(values, text, "datetime64[us]")


def _arrow_dates(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """YYYY-MM-DD texts as dates, null where the text is anything else."""
    try:  # Arrow's own ISO parser: strict, and refuses impossible days such as 2023-02-29
        dates = pc.cast(arr, pa.date32())
    except pa.ArrowInvalid:  # one text it refuses: decide value by value, still in Arrow
        dates = pc.strptime(arr, format="%Y-%m-%d", unit="us", error_is_null=True)
        # strptime rolls impossible days over (2023-02-29 became 2023-03-01): a date counts
        # only if its day of month is the one written.
        shape = pc.match_substring_regex(arr, r"^\d{4}-\d{2}-\d{2}$")
        day = pc.if_else(shape, pc.utf8_slice_codeunits(arr, 8, 10), None)
        exact = pc.equal(pc.day(dates), pc.cast(day, pa.int64()))
        dates = pc.if_else(pc.fill_null(exact, False), dates, None)
    return pc.cast(dates, pa.timestamp("us")).to_numpy(zero_copy_only=False)


def _placed(values: object, text: pd.Series, dtype: str) -> pd.Series:
    """Values computed in ``text``'s row order, put back on its rows by position (never by
    label: a partition's labels may start anywhere or repeat)."""
    return pd.Series(values, dtype=dtype).set_axis(text.index)


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
