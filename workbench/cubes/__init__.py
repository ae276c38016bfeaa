"""OLAP cubes: built with Dask, stored as xarray Datasets in Zarr, queried in memory."""

from workbench.cubes.build import CubeBuild, build_cube, current_cube_path
from workbench.cubes.query import CubeReader, open_cube

__all__ = ["CubeBuild", "CubeReader", "build_cube", "current_cube_path", "open_cube"]
