"""Where the dashboards read from: a catalog file and its workspace, cached per process."""

from __future__ import annotations

import os
from pathlib import Path

import panel as pn
import param

from workbench.catalog import load_catalog
from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "data_catalog.yaml"


def default_catalog_path() -> str:
    """``WORKBENCH_CATALOG`` (set by ``workbench serve``), else the repository's demo catalog."""
    return os.environ.get("WORKBENCH_CATALOG") or str(DEFAULT_CATALOG)


def default_workspace() -> str | None:
    return os.environ.get("WORKBENCH_WORKSPACE") or None


@pn.cache(max_items=8)
def _catalog(path: str, modified: float) -> Catalog:
    return load_catalog(path)


def open_catalog(path: str) -> Catalog:
    """The catalog, read again only when the file changed."""
    return _catalog(path, os.stat(path).st_mtime)


def open_workspace(catalog_path: str, workspace: str | None) -> Workspace:
    return Workspace.for_catalog(open_catalog(catalog_path), workspace)


class CatalogSource(param.Parameterized):
    """Base of the dashboards' data stores: one catalog file and its workspace, by default
    ``WORKBENCH_CATALOG`` and ``WORKBENCH_WORKSPACE`` as `workbench serve` sets them."""

    catalog_path = param.String(default=None, allow_None=True)
    workspace = param.String(default=None, allow_None=True)

    def __init__(self, **params):
        params.setdefault("catalog_path", default_catalog_path())
        params.setdefault("workspace", default_workspace())
        super().__init__(**params)

    @property
    def catalog(self) -> Catalog:
        return open_catalog(self.catalog_path)

    @property
    def ws(self) -> Workspace:
        return open_workspace(self.catalog_path, self.workspace)
