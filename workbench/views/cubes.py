"""The cube explorer: pick a measure and a dimension, see a chart and the numbers behind it."""

from __future__ import annotations

import os
from pathlib import Path

import hvplot.pandas  # noqa: F401  (registers .hvplot on pandas objects)
import pandas as pd
import panel as pn
import param

from workbench.catalog import load_catalog
from workbench.cubes.query import CubeReader, open_cube
from workbench.io.workspace import Workspace

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "data_catalog.yaml"


@pn.cache
def load_cube(catalog_path: str, workspace: str | None, name: str) -> CubeReader:
    """One loaded cube per process and version, shared by every session of the app."""
    catalog = load_catalog(catalog_path)
    return open_cube(catalog, Workspace.for_catalog(catalog, workspace), name)


class CubeStore(param.Parameterized):
    """Where the cubes come from: the catalog file and the workspace (env vars by default)."""

    catalog_path = param.String(default=os.environ.get("WORKBENCH_CATALOG", str(DEFAULT_CATALOG)))
    workspace = param.String(default=os.environ.get("WORKBENCH_WORKSPACE") or None, allow_None=True)

    def cube_names(self) -> list[str]:
        return list(load_catalog(self.catalog_path).cubes)

    def cube(self, name: str) -> CubeReader:
        return load_cube(self.catalog_path, self.workspace, name)


class CubeExplorer(pn.viewable.Viewer):
    """A measure grouped by one dimension, as a bar chart (or a line over time) and a table."""

    cube_name = param.Selector(objects=[], label="Cube")
    measure = param.Selector(objects=[], label="Measure")
    dimension = param.Selector(objects=[], label="Group by")

    def __init__(self, store: CubeStore | None = None, **params):
        self.store = store or CubeStore()
        names = self.store.cube_names()
        self.param.cube_name.objects = names
        params.setdefault("cube_name", names[0])
        super().__init__(**params)
        self._sync_choices()

    @param.depends("cube_name", watch=True)
    def _sync_choices(self) -> None:
        cube = self.store.cube(self.cube_name)
        self.param.measure.objects = cube.measures
        levels = list(cube.levels)
        self.param.dimension.objects = levels
        if self.measure not in cube.measures:
            self.measure = "flights" if "flights" in cube.measures else cube.measures[0]
        if self.dimension not in levels:
            self.dimension = levels[0]

    def data(self) -> pd.DataFrame:
        """What the view shows: the cube query for the chosen measure and dimension."""
        cube = self.store.cube(self.cube_name)
        table = cube.query([self.dimension], measures=[self.measure]).reset_index()
        label = f"{self.dimension}_label"
        if label in cube.dataset.coords:
            labels = cube.dataset[label].to_series()
            table.insert(1, label, table[self.dimension].map(labels).astype(str))
        return table

    @param.depends("cube_name", "measure", "dimension")
    def chart(self):
        table = self.data()
        kind = "line" if pd.api.types.is_datetime64_any_dtype(table[self.dimension]) else "bar"
        return table.hvplot(
            x=self.dimension,
            y=self.measure,
            kind=kind,
            height=380,
            responsive=True,
            title=f"{self.measure} by {self.dimension}",
            rot=45 if kind == "bar" else 0,
        )

    @param.depends("cube_name", "measure", "dimension")
    def table(self):
        return pn.widgets.Tabulator(
            self.data(),
            pagination="remote",
            page_size=15,
            show_index=False,
            disabled=True,
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        controls = pn.Param(
            self.param, parameters=["cube_name", "measure", "dimension"], show_name=False, width=260
        )
        return pn.Row(
            controls,
            pn.Column(self.chart, self.table, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
