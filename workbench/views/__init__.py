"""Panel views for the dashboards in ``apps/``: data stores apart from the views that show them."""

from workbench.views.cubes import CubeExplorer, CubeStore

__all__ = ["CubeExplorer", "CubeStore"]
