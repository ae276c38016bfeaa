"""Joins and derivations applied to one pandas partition, and curated datasets computed on the
fly from them.

A broadcast join takes a right-hand table held whole by each task: a direct lookup by integer
key (one array index per row) when the key allows, a pandas merge otherwise. A ``CuratedView``
chains such joins and the catalog's derived columns, so a task can compute a curated dataset
from its ``from`` table's files without the materialised join (the cube build does this); each
worker reads and indexes the right-hand tables once (:func:`prepared_view`).
:mod:`workbench.zones.curated` decides when a view can be used and plans it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.catalog.expressions import evaluate
from workbench.catalog.models import Derivation, Join
from workbench.errors import WorkbenchError


def renamed_keys(join: Join) -> list[str]:
    return [f"__key{i}" for i in range(len(join.right_keys))]


def check_unique(right: pd.DataFrame, join: Join) -> None:
    keys = renamed_keys(join)
    dup = right[right.duplicated(keys, keep=False)]
    if len(dup):
        raise WorkbenchError(
            f"join with {join.dataset} on {join.right_keys}: keys are not unique (e.g. "
            f"{dup[keys].head(3).to_dict('records')}), so the join would duplicate rows. Add a "
            f"`unique` rule on {join.right_keys} to datasets.{join.dataset}."
        )


@dataclass(frozen=True)
class DirectLookup:
    """A right table addressed by its integer key: ``position[key]`` is the key's row.

    When the key is one integer column that is dense enough (its largest value within a few
    times the row count), joining a partition is one array lookup per row and a ``take`` per
    column, instead of building a hash table of the whole right table in every task.
    """

    right: pd.DataFrame
    position: np.ndarray

    @classmethod
    def build(cls, right: pd.DataFrame, keys: list[str]) -> DirectLookup | None:
        if len(keys) != 1 or not pd.api.types.is_integer_dtype(right[keys[0]]) or right.empty:
            return None
        key = right[keys[0]]
        if key.isna().any() or key.min() < 0 or key.max() >= 4 * len(right) + 1024:
            return None
        # int32 rows when they fit: half the memory to allocate (and page in) per worker
        kind = np.int32 if len(right) < 2**31 - 1 else np.int64
        position = np.full(int(key.max()) + 1, -1, dtype=kind)
        position[key.to_numpy(dtype="int64")] = np.arange(len(right))
        if np.count_nonzero(position >= 0) != len(right):
            return None  # repeated keys
        values = right.drop(columns=keys).reset_index(drop=True)
        # Nullable types: a key with no match gives <NA> in every partition alike, instead of
        # turning integers into floats only where a miss happens.
        for column in values.columns:
            dtype = values[column].dtype
            if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype):
                values[column] = values[column].astype("boolean")
            elif pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
                values[column] = values[column].astype("Int64")
        return cls(values, position)

    def join(self, left: pd.DataFrame, join: Join) -> pd.DataFrame:
        keys = left[join.left_keys[0]]
        if pd.api.types.is_integer_dtype(keys.dtype):  # no float round trip: -1 marks missing
            ids = keys.to_numpy(dtype="int64", na_value=-1)
        else:
            ids = keys.to_numpy(dtype="float64", na_value=-1.0)
            ids = np.where(ids == np.floor(ids), ids, -1).astype(np.int64)  # NaN, 2.5: no match
        rows = self.position.take(ids, mode="clip")
        rows[(ids < 0) | (ids >= len(self.position))] = -1
        missing = bool((rows < 0).any())
        out = left.copy(deep=False)  # copy-on-write: new columns only
        for column in self.right.columns:
            taken = self.right[column].array.take(rows, allow_fill=missing)
            out[column] = pd.Series(taken, index=left.index, copy=False)
        if join.how == "inner":
            out = out[rows >= 0]
        return out


@dataclass(frozen=True)
class JoinStep:
    """One broadcast join applied to a pandas frame: a direct lookup, or a merge."""

    join: Join
    lookup: DirectLookup | None
    right: pd.DataFrame | None

    def apply(self, left: pd.DataFrame) -> pd.DataFrame:
        if self.lookup is not None:
            return self.lookup.join(left, self.join)
        return merge_partition(left, self.right, self.join)


@dataclass(frozen=True)
class RightSide:
    """A right-hand table to read in a task (a worker), not on the client: its files and the
    ``(file column, frame column)`` pairs to take, the join keys first as ``__key<i>``."""

    join: Join
    files: list[str]
    columns: list[tuple[str, str]]

    def read(self) -> pd.DataFrame:
        wanted = list(dict.fromkeys(old for old, _ in self.columns))
        schema = pq.read_schema(self.files[0]) if self.files else None
        text = [
            c
            for c in wanted
            if schema is not None
            and (
                pa.types.is_string(schema.field(c).type)
                or pa.types.is_large_string(schema.field(c).type)
            )
        ]
        tables = [pq.read_table(f, columns=wanted, read_dictionary=text) for f in self.files]
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
        out = pd.DataFrame({new: frame[old] for old, new in self.columns})
        for column in out.columns[len(self.join.right_keys) :]:
            if out[column].dtype.kind not in "biufmM" and out[column].dtype != "category":
                out[column] = out[column].astype("category")  # a join then takes integer codes
        return out

    def step(self) -> JoinStep:
        right = self.read()
        lookup = DirectLookup.build(right, renamed_keys(self.join))
        if lookup is None:  # also when keys repeat: the check says which
            check_unique(right, self.join)
        return JoinStep(self.join, lookup, None if lookup is not None else right)


@dataclass(frozen=True)
class CuratedView:
    """A curated dataset computed on the fly from its ``from`` table's files, unmaterialised.

    Built only when every right-hand table is small enough to broadcast. ``columns`` are the
    ``from`` columns to read; joins bring only the wanted columns (text as categoricals, so a
    join takes integer codes instead of copying strings); only the wanted derivations run.
    ``files`` are the ``from`` table's files at its version.
    """

    source: str
    versions: dict[str, int]
    columns: list[str]
    steps: list[JoinStep | RightSide]
    derived: dict[str, Derivation]
    files: tuple[str, ...] = ()

    def prepared(self) -> CuratedView:
        """The view with every right side read and indexed (see :func:`prepared_view`)."""
        steps = [s.step() if isinstance(s, RightSide) else s for s in self.steps]
        return replace(self, steps=steps)

    @property
    def key(self) -> str:
        """Names what the view reads: same key, same tables (versions are immutable)."""
        sides = [(s.files, s.columns) for s in self.steps if isinstance(s, RightSide)]
        return json.dumps([self.source, self.versions, self.columns, sides], default=str)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        for step in self.steps:
            frame = step.apply(frame)
        return derive_columns(frame, self.derived) if self.derived else frame


class PreparedViews:
    """Prepared views of one process, keyed by what they read (:attr:`CuratedView.key`), each
    kept while a build holds it: a build takes its view with :meth:`get` and lets it go with
    :meth:`release` when it ends, so concurrent builds never evict each other's views. At most
    ``limit`` views are kept: past it the least recently used goes, held or not, so the holds
    of a build that never released (its client died) cannot pin memory for ever.
    """

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self._views: OrderedDict[str, CuratedView] = OrderedDict()
        self._holders: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, view: CuratedView, build: str) -> CuratedView:
        key = view.key
        with self._lock:  # held while preparing: the tasks of one build wait, not read again
            if key not in self._views:
                self._views[key] = view.prepared()
            self._views.move_to_end(key)
            self._holders.setdefault(key, set()).add(build)
            while len(self._views) > self.limit:
                self._drop(next(iter(self._views)))
            return self._views[key]

    def release(self, build: str) -> None:
        with self._lock:
            for key in [k for k, holders in self._holders.items() if build in holders]:
                self._holders[key].discard(build)
                if not self._holders[key]:
                    self._drop(key)

    def _drop(self, key: str) -> None:
        self._views.pop(key, None)
        self._holders.pop(key, None)


_PREPARED = PreparedViews()


def prepared_view(view: CuratedView, build: str) -> CuratedView:
    """``view.prepared()`` once per process for build ``build``, shared by its tasks there.

    Each worker reads the right-hand tables itself (a fraction of a second at TPC-H SF1) and
    keeps them for its next tasks. The alternatives measured slower: computing them to the
    client and scattering them back cost ~1.7 s per build; one task preparing them drew most
    build tasks to the worker that held the result.
    """
    return _PREPARED.get(view, build)


def release_prepared_views(build: str) -> None:
    """Free the views build ``build`` holds (run on each worker when the build ends)."""
    _PREPARED.release(build)


def take_partition(left: pd.DataFrame, lookup: DirectLookup, join: Join) -> pd.DataFrame:
    return lookup.join(left, join)


def merge_partition(left: pd.DataFrame, right: pd.DataFrame, join: Join) -> pd.DataFrame:
    keys = renamed_keys(join)
    out = left.merge(right, how=join.how, left_on=join.left_keys, right_on=keys, sort=False)
    return out.drop(columns=keys)


def derive_columns(df: pd.DataFrame, derived: dict[str, Derivation]) -> pd.DataFrame:
    """Add the catalog's derived columns to one partition, vectorised."""
    df = df.copy(deep=False)
    for name, spec in derived.items():
        if spec.expr is not None:
            df[name] = evaluate(spec.expr, df)
        elif spec.is_null is not None:
            df[name] = df[spec.is_null].isna()
        else:
            year, month, day = (df[c].astype("float64") for c in spec.make_date)
            parts = pd.DataFrame({"year": year, "month": month, "day": day})
            df[name] = pd.to_datetime(parts, errors="coerce").dt.as_unit("us")
    return df
