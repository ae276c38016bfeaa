"""Panel views for the dashboards in ``apps/``: data stores apart from the views that show them."""

from workbench.views.cubes import CubeSelection, CubeStore
from workbench.views.explorer import CubeExplorer
from workbench.views.index import AppIndex
from workbench.views.lineage import LineageStore, LineageView
from workbench.views.models import ModelStore
from workbench.views.models_dashboard import ModelsDashboard
from workbench.views.predictions import PredictionStore
from workbench.views.predictions_explorer import PredictionsExplorer
from workbench.views.quality import QualityStore
from workbench.views.quality_dashboard import QualityDashboard
from workbench.views.shell import dashboard

__all__ = [
    "AppIndex",
    "CubeExplorer",
    "CubeSelection",
    "CubeStore",
    "LineageStore",
    "LineageView",
    "ModelStore",
    "ModelsDashboard",
    "PredictionStore",
    "PredictionsExplorer",
    "QualityDashboard",
    "QualityStore",
    "dashboard",
]
