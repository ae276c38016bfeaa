"""Ask a built cube questions: slice, dice, roll up, drill down, pivot, top N.

A :class:`Query` is a value (levels to group by, members to keep, measures, a filter on
measures); its methods return new queries, so a dashboard can keep the current one and derive the
next click from it. :class:`CubeReader` answers a query from the smallest stored cuboid that
holds every level the query needs, and :meth:`CubeReader.explain` says which one and why the
others could not. Cuboids are opened once without Dask: a query reads only the chunks it selects
and reduces them with numpy, which keeps answers in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench import config
from workbench.catalog.expressions import evaluate
from workbench.catalog.load import expression_names
from workbench.catalog.models import Catalog
from workbench.cubes.build import BASE, REDUCERS, ROWS, current_version, reduce_dims
from workbench.errors import CubeError
from workbench.io.workspace import Workspace, read_json

Members = object  # one member, a list of members, or a slice(start, stop) of ordered members


@dataclass(frozen=True)
class Query:
    """What to ask a cube. Build it directly or step by step with the OLAP operations."""

    by: tuple[str, ...] = ()
    where: tuple[tuple[str, Members], ...] = ()
    measures: tuple[str, ...] | None = None
    having: str | None = None

    def _where(self) -> dict[str, Members]:
        return dict(self.where)

    def slice(self, **members: object) -> Query:
        """Fix one member per level (``slice(origin="JFK")``); the level leaves ``by``."""
        where = self._where() | members
        return replace(
            self, where=tuple(where.items()), by=tuple(b for b in self.by if b not in members)
        )

    def dice(self, **members: Iterable | slice) -> Query:
        """Keep a subset of members per level (a list, or a slice of ordered members)."""
        where = self._where() | {
            k: (v if isinstance(v, slice) else list(v)) for k, v in members.items()
        }
        return replace(self, where=tuple(where.items()))

    def roll_up(self, level: str, to: str | None = None) -> Query:
        """Replace ``level`` in ``by`` by the coarser ``to``, or drop it when ``to`` is None."""
        if level not in self.by:
            raise CubeError(f"cannot roll up {level!r}: the query groups by {list(self.by)}")
        by = [to if b == level else b for b in self.by if not (b == level and to is None)]
        return replace(self, by=tuple(dict.fromkeys(by)))

    def drill_down(self, level: str, to: str, member: object | None = None) -> Query:
        """Replace ``level`` by the finer ``to``; with ``member``, only inside that member."""
        query = self
        if member is not None:
            query = replace(query, where=tuple((query._where() | {level: member}).items()))
        by = [to if b == level else b for b in query.by]
        if to not in by:
            by.append(to)
        return replace(query, by=tuple(dict.fromkeys(by)))

    def filter(self, having: str) -> Query:
        """Keep result rows where a boolean expression over measures holds (``flights > 100``)."""
        return replace(self, having=having)

    def with_measures(self, *measures: str) -> Query:
        return replace(self, measures=tuple(measures))


@dataclass(frozen=True)
class Explanation:
    """Which cuboid answers a query, and why each other one does not."""

    chosen: str
    cells: int
    reasons: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"answered by {self.chosen} ({self.cells:,} cells)"]
        lines += [f"  not {name}: {why}" for name, why in self.reasons.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Cuboid:
    name: str
    dataset: xr.Dataset
    in_memory: bool = True  # False: read from Zarr at each query (larger than the memory budget)

    @property
    def cells(self) -> int:
        return int(math.prod(self.dataset.sizes.values()))

    def holds(self, level: str) -> bool:
        return level in self.dataset.dims or level in self.dataset.coords

    def dim_of(self, level: str) -> str:
        if level in self.dataset.dims:
            return level
        return self.dataset[level].dims[0]


@dataclass(frozen=True)
class CubeReader:
    """One version of a cube with all its cuboids. Open with :func:`open_cube`."""

    name: str
    version: int
    cuboids: tuple[Cuboid, ...]
    levels: dict[str, tuple[str, str]]

    @property
    def dataset(self) -> xr.Dataset:
        """The base cuboid (finest cells)."""
        return self.cuboids[0].dataset

    @property
    def dimensions(self) -> list[str]:
        return list(self.dataset.dims)

    @property
    def stored_measures(self) -> list[str]:
        return [v for v in self.dataset.data_vars if not v.startswith("__")]

    @property
    def derived_measures(self) -> dict[str, str]:
        return dict(self.dataset.attrs.get("derived_measures", {}))

    @property
    def measures(self) -> list[str]:
        return [*self.stored_measures, *self.derived_measures]

    def members(self, level: str) -> list:
        self._check_levels([level])
        values = self.dataset[level].values
        return pd.unique(values).tolist() if level not in self.dataset.dims else values.tolist()

    # -- routing --------------------------------------------------------------------------------

    def explain(self, query: Query) -> Explanation:
        needed = [*query.by, *dict(query.where)]
        self._check_levels(needed)
        able, reasons = [], {}
        for cuboid in self.cuboids:
            missing = [lv for lv in needed if not cuboid.holds(lv)]
            if missing:
                reasons[cuboid.name] = f"lacks level(s) {missing}"
            else:
                able.append(cuboid)
        best = min(able, key=lambda c: c.cells)
        for cuboid in able:
            if cuboid is not best:
                reasons[cuboid.name] = (
                    f"could answer, but holds {cuboid.cells:,} cells against {best.cells:,}"
                )
        return Explanation(best.name, best.cells, reasons)

    def cuboid_for(self, query: Query) -> Cuboid:
        """The cuboid that answers ``query`` (see :meth:`explain`)."""
        chosen = self.explain(query).chosen
        return next(c for c in self.cuboids if c.name == chosen)

    # -- answering ------------------------------------------------------------------------------

    def run(self, query: Query, *, as_xarray: bool = False) -> pd.DataFrame | xr.Dataset:
        """The query's answer: a DataFrame indexed by ``query.by`` (or an xarray Dataset)."""
        wanted = list(query.measures or self.measures)
        unknown = sorted(set(wanted) - set(self.measures))
        if unknown:
            raise CubeError(
                f"cube {self.name!r} has no measure {unknown}; "
                f"choose from {', '.join(self.measures)}."
            )
        cuboid = self.cuboid_for(query)
        # Only the measures the answer and its filter use: a dashboard asks for one at a time.
        asked = {*wanted, *expression_names(query.having)}
        derived = {n: e for n, e in self.derived_measures.items() if n in asked}
        asked |= {name for expr in derived.values() for name in expression_names(expr)}
        stored = [m for m in cuboid.dataset.data_vars if m in asked]
        ds = _select(cuboid, dict(query.where), stored)
        table = _group(ds, cuboid, list(query.by))
        for name, expr in derived.items():
            # Stored in the cube's metadata, so parsed again here: the workspace is data.
            table[name] = evaluate(expr, table) if len(table) else pd.Series(dtype="float64")
        if query.having:
            table = table[evaluate(query.having, table).fillna(False).astype(bool)]
        table = table[wanted]
        return table.to_xarray() if as_xarray else table

    def query(
        self,
        by: Iterable[str] = (),
        *,
        where: Mapping[str, Members] | None = None,
        measures: Iterable[str] | None = None,
        having: str | None = None,
        as_xarray: bool = False,
    ) -> pd.DataFrame | xr.Dataset:
        """Shorthand for ``run(Query(...))``.

        Examples
        --------
        >>> cube.query(["carrier"], where={"origin": "JFK"}, measures=["flights"])  # doctest: +SKIP
        """
        q = Query(
            tuple(by), tuple((where or {}).items()), tuple(measures) if measures else None, having
        )
        return self.run(q, as_xarray=as_xarray)

    def pivot(
        self, rows: str, columns: str, measure: str, *, where: Mapping[str, Members] | None = None
    ) -> pd.DataFrame:
        """One measure with ``rows`` down and ``columns`` across."""
        table = self.query([rows, columns], where=where, measures=[measure])
        return table[measure].unstack(columns)

    def top_n(
        self,
        n: int,
        by: str,
        measure: str,
        *,
        where: Mapping[str, Members] | None = None,
        smallest: bool = False,
    ) -> pd.DataFrame:
        table = self.query([by], where=where, measures=[measure]).dropna(subset=[measure])
        return table.nsmallest(n, measure) if smallest else table.nlargest(n, measure)

    def _check_levels(self, levels: Iterable[str]) -> None:
        unknown = [lv for lv in levels if lv not in self.levels]
        if unknown:
            raise CubeError(
                f"cube {self.name!r} has no level {unknown}; choose from {', '.join(self.levels)}."
            )


def _coerce(values: np.ndarray, members: object) -> object:
    """Members as the level's type: '2013-07' means a timestamp on a time level."""
    if not np.issubdtype(values.dtype, np.datetime64):
        return members
    if isinstance(members, slice):
        return slice(
            *(None if m is None else pd.Timestamp(m) for m in (members.start, members.stop))
        )
    if isinstance(members, list | tuple):
        return [pd.Timestamp(m) for m in members]
    return pd.Timestamp(members)


def _select(cuboid: Cuboid, where: dict[str, Members], measures: list[str]) -> xr.Dataset:
    ds = cuboid.dataset[measures]
    for level, members in where.items():
        dim = cuboid.dim_of(level)
        values = ds[level].values
        members = _coerce(values, members)
        if isinstance(members, slice):
            keep = np.ones(len(values), dtype=bool)
            if members.start is not None:
                keep &= values >= np.asarray(members.start, dtype=values.dtype)
            if members.stop is not None:
                keep &= values <= np.asarray(members.stop, dtype=values.dtype)
        else:
            wanted = members if isinstance(members, list) else [members]
            keep = pd.Index(values).isin(wanted)
            if not keep.any():
                raise CubeError(
                    f"no member {members!r} in level {level!r}; "
                    f"members start {pd.unique(values)[:8].tolist()}."
                )
        ds = ds.isel({dim: np.flatnonzero(keep)})
    return ds


def _group(ds: xr.Dataset, cuboid: Cuboid, by: list[str]) -> pd.DataFrame:
    """Reduce the dimensions ``by`` does not use, then group coarser levels with pandas."""
    dims_used = {cuboid.dim_of(level) for level in by}
    reduced = reduce_dims(ds, [d for d in ds.dims if d not in dims_used]).load()
    if not by:
        return pd.DataFrame({n: [v.item()] for n, v in reduced.data_vars.items()})
    if all(level in reduced.dims for level in by):
        table = reduced.to_dataframe()[list(reduced.data_vars)]
        return table.reorder_levels(by).sort_index() if len(by) > 1 else table
    frame = reduced.to_dataframe().reset_index()
    ops = {n: REDUCERS[v.attrs["agg"]] for n, v in reduced.data_vars.items()}
    return frame.groupby(by, sort=True).agg(ops)


def open_cube(catalog: Catalog, ws: Workspace, name: str) -> CubeReader:
    """Open the current version of cube ``name`` with all its cuboids (no Dask involved)."""
    catalog.cube(name)  # an unknown name: CubeNotFound, listing the cubes
    version, folder = current_version(ws, name)
    meta = read_json(folder / "cube.json")
    order = sorted(meta["cuboids"], key=lambda n: (n != BASE, meta["cuboids"][n]))
    budget = config.get("cube-memory-mb") * 2**20
    cuboids = []
    # Smallest first: the cuboids most queries use are held in memory, large ones stay lazy.
    for cuboid in sorted(order, key=lambda n: meta["cuboids"][n]):
        ds = _open_store(folder / f"{cuboid}.zarr")
        held = ds.nbytes <= budget
        if held:
            ds, budget = ds.load(), budget - ds.nbytes
        cuboids.append(Cuboid(cuboid, ds, in_memory=held))
    cuboids = tuple(sorted(cuboids, key=lambda c: order.index(c.name)))
    levels = {lv: tuple(v) for lv, v in meta["levels"].items()}
    return CubeReader(name, version, cuboids, levels)


def _open_store(path: Path) -> xr.Dataset:
    # chunks=None: lazily indexed numpy arrays; a selection reads only the chunks it touches.
    return xr.open_zarr(path, consolidated=True, chunks=None)


__all__ = ["CubeReader", "Explanation", "Query", "ROWS", "open_cube"]
