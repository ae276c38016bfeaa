"""The functions and methods catalog expressions may call (docs/expressions.md).

Each is an implementation written here and the kinds of arguments it takes: the parser in
``workbench.catalog.expressions`` looks names up in these tables only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.lazy import LazyModule

# Only evaluation needs them (and `workbench --help` should not load them).
np = LazyModule("numpy")
pd = LazyModule("pandas")


@dataclass(frozen=True)
class Call:
    """A function or method of the language: its implementation and the kinds of arguments."""

    impl: Callable[..., Any]
    args: tuple[str, ...] = ()  # "value" (any expression), "text", "int" or "literals"
    required: int | None = None  # fewer arguments allowed down to this many

    def arity(self) -> tuple[int, int]:
        return (len(self.args) if self.required is None else self.required, len(self.args))


def _where(cond: Any, a: Any, b: Any) -> Any:
    if isinstance(cond, pd.Series):
        cond = cond.fillna(False).astype(bool).to_numpy()
    out = np.where(cond, a, b)
    return out if np.ndim(out) else out.item()


def _isin(x: pd.Series, values: list) -> pd.Series:
    return x.isin(values)


FUNCTIONS: dict[str, Call] = {
    "abs": Call(lambda *a: np.abs(*a), ("value",)),
    "round": Call(lambda x, n=0: np.round(x, n), ("value", "int"), required=1),
    "clip": Call(lambda *a: np.clip(*a), ("value", "value", "value")),
    "where": Call(_where, ("value", "value", "value")),
    "isna": Call(lambda x: pd.isna(x), ("value",)),
    "notna": Call(lambda x: pd.notna(x), ("value",)),
    "sqrt": Call(lambda *a: np.sqrt(*a), ("value",)),
    "log": Call(lambda *a: np.log(*a), ("value",)),
    "exp": Call(lambda *a: np.exp(*a), ("value",)),
    "floor": Call(lambda *a: np.floor(*a), ("value",)),
    "ceil": Call(lambda *a: np.ceil(*a), ("value",)),
}

# Methods of a value (a column or a computed series); the receiver is always a Series.
METHODS: dict[str, Call] = {
    "isna": Call(lambda s: s.isna()),
    "notna": Call(lambda s: s.notna()),
    "isnull": Call(lambda s: s.isna()),
    "notnull": Call(lambda s: s.notna()),
    "abs": Call(lambda s: s.abs()),
    "round": Call(lambda s, n=0: s.round(n), ("int",), required=0),
    "clip": Call(lambda s, lo, hi: s.clip(lo, hi), ("value", "value")),
    "between": Call(lambda s, lo, hi: s.between(lo, hi), ("value", "value")),
    "isin": Call(_isin, ("literals",)),
    "fillna": Call(lambda s, v: s.fillna(v), ("value",)),
}

STR_METHODS: dict[str, Call] = {
    "len": Call(lambda s: s.str.len()),
    "startswith": Call(lambda s, p: s.str.startswith(p), ("text",)),
    "endswith": Call(lambda s, p: s.str.endswith(p), ("text",)),
    # A literal substring: a regular expression from the catalog could take exponential time.
    "contains": Call(lambda s, p: s.str.contains(p, regex=False), ("text",)),
    "lower": Call(lambda s: s.str.lower()),
    "upper": Call(lambda s: s.str.upper()),
    "strip": Call(lambda s: s.str.strip()),
}

DT_METHODS: dict[str, Call] = {
    "total_seconds": Call(lambda s: s.dt.total_seconds()),
}

DT_PROPERTIES = (
    "year",
    "quarter",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "dayofweek",
    "day_of_week",
    "dayofyear",
    "day_of_year",
    "weekday",
    "days",
    "seconds",
)

SUMMARY = (
    "column names, numbers, 'text', True/False, + - * / // % **, == != < <= > >=, "
    "& | ~ and or not, x in [...], functions "
    + ", ".join(FUNCTIONS)
    + ", methods ."
    + ", .".join(METHODS)
    + ", .str."
    + ", .str.".join(STR_METHODS)
    + ", .dt."
    + ", .dt.".join([*DT_PROPERTIES, *DT_METHODS])
)
