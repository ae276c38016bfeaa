"""OLAP cubes: built with Dask, stored as xarray Datasets in Zarr, queried without Dask."""

from workbench.cubes.build import CubeBuild, build_cube, current_cube_path, current_version
from workbench.cubes.query import CubeReader, Explanation, Query, open_cube
from workbench.errors import CubeError  # re-exported: where cube users look for it

__all__ = [
    "CubeBuild",
    "CubeError",
    "CubeReader",
    "Explanation",
    "Query",
    "build_cube",
    "current_cube_path",
    "current_version",
    "open_cube",
]
