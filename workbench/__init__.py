"""The Dask analytics workbench: a catalog-driven data lake, OLAP cubes and ML on Dask.

Examples
--------
>>> import workbench as wb
>>> catalog = wb.load_catalog("data_catalog.yaml")          # doctest: +SKIP
>>> ws = wb.Workspace.for_catalog(catalog)                   # doctest: +SKIP
>>> flights = wb.read_dataset(catalog, ws, "flights")        # doctest: +SKIP
>>> cube = wb.open_cube(catalog, ws, "flight_delays")        # doctest: +SKIP
"""

from workbench import config
from workbench.catalog import Catalog, columns_of, load_catalog, parse_catalog
from workbench.cluster import close_client, get_client
from workbench.cubes import CubeReader, build_cube, open_cube
from workbench.errors import (
    CatalogError,
    ClusterError,
    CubeError,
    CubeNotFound,
    DatasetNotFound,
    ModelNotFound,
    ProfileError,
    StepFailed,
    ValidationFailed,
    WorkbenchError,
    WorkspaceError,
)
from workbench.io import Workspace, read_table
from workbench.ml import (
    build_features,
    list_versions,
    load_model,
    load_predictor,
    monitor_model,
    predict_one,
    read_predictions,
    score_batch,
    train_model,
)
from workbench.pipeline import RunResult, plan_steps, run_pipeline, select_steps
from workbench.runs import RunStore
from workbench.zones import build_curated, land, list_batches, promote_batch, read_dataset

__version__ = "0.1.0"

__all__ = [
    "Catalog",
    "CatalogError",
    "ClusterError",
    "CubeError",
    "CubeNotFound",
    "CubeReader",
    "DatasetNotFound",
    "ModelNotFound",
    "ProfileError",
    "RunResult",
    "RunStore",
    "StepFailed",
    "ValidationFailed",
    "WorkbenchError",
    "Workspace",
    "WorkspaceError",
    "build_cube",
    "build_curated",
    "build_features",
    "close_client",
    "columns_of",
    "config",
    "get_client",
    "land",
    "list_batches",
    "list_versions",
    "load_catalog",
    "load_model",
    "load_predictor",
    "monitor_model",
    "open_cube",
    "parse_catalog",
    "plan_steps",
    "predict_one",
    "promote_batch",
    "read_dataset",
    "read_predictions",
    "read_table",
    "run_pipeline",
    "score_batch",
    "select_steps",
    "train_model",
]
