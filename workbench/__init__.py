"""The Dask analytics workbench: a catalog-driven data lake, OLAP cubes and ML on Dask.

Examples
--------
>>> import workbench as wb
>>> catalog = wb.load_catalog("data_catalog.yaml")          # doctest: +SKIP
>>> ws = wb.Workspace.for_catalog(catalog)                   # doctest: +SKIP
>>> flights = wb.read_dataset(catalog, ws, "flights")        # doctest: +SKIP
>>> cube = wb.open_cube(catalog, ws, "flight_delays")        # doctest: +SKIP
"""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        # dask.config, imported by config, costs a third of a second: not on every command.
        ".": ("config",),
        ".catalog": (
            "Catalog",
            "columns_of",
            "load_catalog",
            "parse_catalog",
        ),
        ".cluster": (
            "close_client",
            "get_client",
        ),
        ".cubes": (
            "CubeReader",
            "build_cube",
            "open_cube",
        ),
        ".errors": (
            "CatalogError",
            "ClusterError",
            "CubeError",
            "CubeNotFound",
            "DatasetNotFound",
            "ModelNotFound",
            "ProfileError",
            "StepFailed",
            "ValidationFailed",
            "WorkbenchError",
            "WorkspaceError",
        ),
        ".io": (
            "Workspace",
            "read_table",
        ),
        ".ml": (
            "build_features",
            "list_versions",
            "load_model",
            "load_predictor",
            "monitor_model",
            "predict_one",
            "read_predictions",
            "score_batch",
            "train_model",
        ),
        ".pipeline": (
            "RunResult",
            "plan_steps",
            "run_pipeline",
            "select_steps",
        ),
        ".runs": ("RunStore",),
        ".zones": (
            "build_curated",
            "land",
            "list_batches",
            "promote_batch",
            "read_dataset",
            "verify_lake",
        ),
    },
)

__version__ = "0.1.0"
