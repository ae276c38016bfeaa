"""OLAP cubes: built with Dask, stored as xarray Datasets in Zarr, queried without Dask."""

from workbench.cubes.build import CubeBuild, CubeError, build_cube, current_cube_path
from workbench.cubes.query import CubeReader, Explanation, Query, open_cube

__all__ = [
    "CubeBuild",
    "CubeError",
    "CubeReader",
    "Explanation",
    "Query",
    "build_cube",
    "current_cube_path",
    "open_cube",
]
