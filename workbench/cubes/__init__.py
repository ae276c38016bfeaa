"""OLAP cubes: built with Dask, stored as xarray Datasets in Zarr, queried without Dask."""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".build": (
            "CubeBuild",
            "build_cube",
            "current_cube_path",
            "current_version",
        ),
        ".query": (
            "CubeReader",
            "Explanation",
            "Query",
            "open_cube",
        ),
        "workbench.errors": ("CubeError",),  # re-exported: where cube users look for it
    },
)
