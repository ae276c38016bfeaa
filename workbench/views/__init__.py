"""Panel views for the dashboards in ``apps/``: data stores apart from the views that show them."""

from workbench.views.cubes import CubeSelection, CubeStore
from workbench.views.explorer import CubeExplorer
from workbench.views.shell import dashboard

__all__ = ["CubeExplorer", "CubeSelection", "CubeStore", "dashboard"]
