"""The cube explorer's data side: which cube to read, and the selection that becomes a query.

:class:`CubeStore` opens cubes (once per version, shared by all sessions). :class:`CubeSelection`
holds what a user chose (measure, row and column levels, member filters, drill path); every table
and chart of the explorer is :meth:`CubeSelection.frame` or :meth:`CubeSelection.pivot`, answered
by the cube query API. Members travel as text (``2013-Q3``, ``JFK``) so a selection fits in a URL.
"""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from workbench.catalog import TIME_LEVELS
from workbench.cubes import CubeReader, Query, current_version, open_cube
from workbench.errors import WorkbenchError
from workbench.views.source import (
    CatalogSource,
    open_catalog,
    open_workspace,
)

_PERIODS = {
    "year": ("Y", "%Y"),
    "quarter": ("Q", "%Y-Q%q"),
    "month": ("M", "%Y-%m"),
    "day": ("D", "%Y-%m-%d"),
    "hour": ("h", "%Y-%m-%d %H:00"),
}
ALL = "All"


@pn.cache(max_items=4)
def _load_cube(catalog_path: str, workspace: str | None, name: str, version: int) -> CubeReader:
    """One open cube per version, shared by every session of the server process."""
    catalog = open_catalog(catalog_path)
    return open_cube(catalog, open_workspace(catalog_path, workspace), name)


def is_time_level(level: str) -> bool:
    return level in TIME_LEVELS


def member_text(level: str, values) -> list[str]:
    """Members as the text users see and URLs carry: ``2013-Q3`` for a quarter, else ``str``."""
    if is_time_level(level):
        freq, fmt = _PERIODS[level]
        return [pd.Timestamp(v).to_period(freq).strftime(fmt) for v in values]
    return [str(v) for v in values]


def member_value(level: str, text: str) -> object:
    """The inverse of :func:`member_text`: ``2013-Q3`` -> Timestamp('2013-07-01')."""
    if is_time_level(level):
        return pd.Period(text, freq=_PERIODS[level][0]).start_time
    return text


class CubeStore(CatalogSource):
    """Cubes of one catalog and workspace (``WORKBENCH_CATALOG``/``_WORKSPACE`` by default)."""

    def cube_names(self) -> list[str]:
        return list(self.catalog.cubes)

    def cube(self, name: str) -> CubeReader:
        """The current version of cube ``name`` (reopened after a rebuild)."""
        version, _ = current_version(self.ws, name)
        return _load_cube(self.catalog_path, self.workspace, name, version)

    def hierarchies(self, name: str) -> dict[str, list[str]]:
        """Levels of each dimension, coarse to fine, in catalog order."""
        spec = self.catalog.cubes[name]
        return {key: dim.level_names(key) for key, dim in spec.dimensions.items()}

    def row_count(self, name: str) -> str | None:
        """A measure counting every source row (``agg: count`` without column or filter): cells
        where it is 0 hold no data, and the explorer can leave them out."""
        spec = self.catalog.cubes[name]
        return next(
            (
                m
                for m, measure in spec.measures.items()
                if measure.agg == "count" and measure.column is None and measure.where is None
            ),
            None,
        )

    def labels(self, name: str, level: str) -> dict[str, str]:
        """Display names of a level's members when the catalog declares labels (carriers)."""
        ds = self.cube(name).dataset
        if f"{level}_label" not in ds.coords:
            return {}
        members = member_text(level, ds[level].values)
        return dict(zip(members, ds[f"{level}_label"].values.tolist(), strict=True))


class CubeSelection(param.Parameterized):
    """What the user looks at. Every parameter is plain text or lists, so it fits in a URL."""

    cube_name = param.Selector(objects=[], label="Cube")
    measure = param.Selector(objects=[], label="Measure")
    rows = param.Selector(objects=[], label="Rows")
    columns = param.Selector(objects=[""], default="", label="Columns")
    filters = param.Dict(default={}, doc="level -> member texts to keep")
    non_empty = param.Boolean(default=True, label="Hide members without rows")
    path = param.List(default=[], doc="drill steps: [level, member text, rows before the step]")

    def __init__(self, store: CubeStore | None = None, **params):
        self.store = store or CubeStore()
        names = self.store.cube_names()
        self.param.cube_name.objects = names
        params.setdefault("cube_name", names[0])
        self._sync_choices(params["cube_name"], params)
        super().__init__(**params)
        self.param.watch(self._cube_changed, "cube_name")

    # -- choices --------------------------------------------------------------------------------

    def _sync_choices(self, name: str, params: dict) -> None:
        cube = self.store.cube(name)
        levels = [lv for dim in self.store.hierarchies(name).values() for lv in dim]
        self.param.measure.objects = cube.measures
        self.param.rows.objects = levels
        self.param.columns.objects = ["", *levels]
        if params.get("measure") not in cube.measures:
            params["measure"] = "flights" if "flights" in cube.measures else cube.measures[0]
        if params.get("rows") not in levels:
            params["rows"] = self._first_rows(name)
        if params.get("columns") not in levels:
            params["columns"] = ""

    def _first_rows(self, name: str) -> str:
        """The coarsest level of the first dimension that is not time: a bar chart to start."""
        hierarchies = self.store.hierarchies(name)
        plain = [levels for levels in hierarchies.values() if not is_time_level(levels[-1])]
        return (plain or list(hierarchies.values()))[0][0]

    def _cube_changed(self, event) -> None:
        params = {"measure": self.measure, "rows": self.rows, "columns": self.columns}
        self._sync_choices(event.new, params)
        self.param.update(filters={}, path=[], **params)

    @property
    def cube(self) -> CubeReader:
        return self.store.cube(self.cube_name)

    def dimension_of(self, level: str) -> str:
        return next(k for k, lv in self.store.hierarchies(self.cube_name).items() if level in lv)

    def filter_levels(self) -> dict[str, str]:
        """The level each dimension is filtered at: month for time (when kept), else the grain."""
        chosen = {}
        for key, levels in self.store.hierarchies(self.cube_name).items():
            chosen[key] = "month" if "month" in levels else levels[-1]
        return chosen

    def members(self, level: str) -> list[str]:
        return member_text(level, self.cube.members(level))

    # -- the query ------------------------------------------------------------------------------

    def where(self) -> dict[str, object]:
        where = {
            level: [member_value(level, m) for m in members]
            for level, members in self.filters.items()
            if members
        }
        for level, member, _ in self.path:
            where[level] = member_value(level, member)
        return where

    def query(self) -> Query:
        by = (self.rows, self.columns) if self.columns else (self.rows,)
        query = Query(by=by, where=tuple(self.where().items()), measures=(self.measure,))
        counted = self.store.row_count(self.cube_name)
        return query.filter(f"{counted} > 0") if self.non_empty and counted else query

    def answered_from_memory(self) -> bool:
        """Whether the cuboid that answers the current query is held in memory (a query
        that reads cells from Zarr, or one that cannot be answered, says no)."""
        try:
            return self.cube.cuboid_for(self.query()).in_memory
        except WorkbenchError:
            return False

    def frame(self) -> pd.DataFrame:
        """The cube's answer, one row per cell, members as text."""
        table = self.cube.run(self.query()).reset_index()
        for level in self.query().by:
            table[level] = member_text(level, table[level])
        return table

    def pivot(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Rows down, columns across (or the measure alone when no column level is chosen)."""
        frame = self.frame() if frame is None else frame
        if not self.columns:
            return frame.set_index(self.rows)[[self.measure]]
        wide = frame.pivot(index=self.rows, columns=self.columns, values=self.measure)
        wide.columns.name = None
        if pd.api.types.is_integer_dtype(frame[self.measure]):
            wide = wide.astype("Int64")  # counts stay whole numbers; empty cells are <NA>
        return wide

    # -- drilling -------------------------------------------------------------------------------

    def finer_level(self, level: str) -> str | None:
        levels = self.store.hierarchies(self.cube_name)[self.dimension_of(level)]
        at = levels.index(level)
        return levels[at + 1] if at + 1 < len(levels) else None

    def _next_dimension(self) -> str | None:
        """The coarsest level of the next dimension not yet fixed by the drill path."""
        hierarchies = self.store.hierarchies(self.cube_name)
        fixed = {lvl for lvl, _, _ in self.path} | {self.rows}
        keys = list(hierarchies)
        start = keys.index(self.dimension_of(self.rows))
        for key in keys[start + 1 :] + keys[:start]:
            if hierarchies[key][-1] not in fixed:
                return next(lv for lv in hierarchies[key] if lv not in fixed)
        return None

    def drill(self, member: str) -> bool:
        """Drill into ``member`` of the row level: the finer level of the same dimension, or the
        next dimension when the row level is the finest. False when there is nowhere to go."""
        target = self.finer_level(self.rows) or self._next_dimension()
        if target is None or member not in self.members(self.rows):
            return False
        columns = self.columns
        if columns and self.dimension_of(columns) == self.dimension_of(target):
            columns = ""
        self.param.update(
            path=[*self.path, [self.rows, member, self.rows]], rows=target, columns=columns
        )
        return True

    def roll_up(self, steps: int) -> None:
        """Back to the view before drill step ``steps`` (0: before any drilling)."""
        if steps >= len(self.path):
            return
        self.param.update(rows=self.path[steps][2], path=self.path[:steps])

    def breadcrumb(self) -> list[str]:
        """``All`` then one ``level member`` per drill step."""
        return [ALL, *(f"{level} {member}" for level, member, _ in self.path)]
