"""Ask a built cube questions: pick members, group by dimensions, get stored or derived measures.

Queries run on the stored cells with numpy (the cube is opened once and loaded), so an answer is
a few milliseconds; roll-ups reduce each stored measure with its own operator (sum for sums and
counts, min, max) and derived measures are computed after the reduction, which keeps them exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
import xarray as xr

from workbench.catalog.models import Catalog
from workbench.cubes.build import current_cube_path
from workbench.errors import WorkbenchError
from workbench.io.workspace import Workspace

_REDUCERS = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}


@dataclass(frozen=True)
class CubeReader:
    """One loaded cube version. Open with :func:`open_cube`."""

    name: str
    dataset: xr.Dataset

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

    def members(self, dimension: str) -> list:
        self._check_dims([dimension])
        return self.dataset[dimension].values.tolist()

    def query(
        self,
        by: Iterable[str] = (),
        *,
        where: Mapping[str, object] | None = None,
        measures: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Measures grouped by ``by`` over the cells matching ``where``.

        Examples
        --------
        >>> cube.query(["carrier"], where={"origin": "JFK"})  # doctest: +SKIP
        """
        by = list(by)
        wanted = list(measures or self.measures)
        self._check_dims([*by, *(where or {})])
        unknown = sorted(set(wanted) - set(self.measures))
        if unknown:
            raise WorkbenchError(
                f"cube {self.name!r} has no measure {unknown}; "
                f"choose from {', '.join(self.measures)}."
            )
        cells = self.dataset
        for dim, members in (where or {}).items():
            keep = members if isinstance(members, list | tuple) else [members]
            cells = cells.sel({dim: keep})
        drop = [d for d in cells.dims if d not in by]
        stored = {
            n: getattr(cells[n], _REDUCERS[cells[n].attrs["agg"]])(dim=drop)
            for n in self.stored_measures
        }
        table = (
            xr.Dataset(stored).to_dataframe()
            if by
            else pd.DataFrame({n: [v.item()] for n, v in stored.items()})
        )
        for name, expr in self.derived_measures.items():
            table[name] = table.eval(expr)
        return table[wanted]

    def _check_dims(self, dims: Iterable[str]) -> None:
        unknown = [d for d in dims if d not in self.dataset.dims]
        if unknown:
            raise WorkbenchError(
                f"cube {self.name!r} has no dimension {unknown}; "
                f"choose from {', '.join(self.dimensions)}."
            )


def open_cube(catalog: Catalog, ws: Workspace, name: str) -> CubeReader:
    """Load the current version of cube ``name`` into memory."""
    if name not in catalog.cubes:
        raise WorkbenchError(
            f"no cube named {name!r}; the catalog has {', '.join(catalog.cubes) or 'none'}."
        )
    path = current_cube_path(ws, name)
    return CubeReader(name, xr.open_zarr(path, consolidated=True).load())
