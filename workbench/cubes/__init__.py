"""OLAP cubes: built with Dask, stored as xarray Datasets in Zarr, queried without Dask."""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".build": (
            "CubeBuild",
            "CubeError",
            "build_cube",
            "current_cube_path",
        ),
        ".query": (
            "CubeReader",
            "Explanation",
            "Query",
            "open_cube",
        ),
    },
)

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
