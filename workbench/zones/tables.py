"""Where each catalog dataset lives in the workspace, and reading it back."""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd

from workbench.catalog.models import Catalog
from workbench.io.delta import read_table
from workbench.io.workspace import Workspace
from workbench.privacy import Viewer, masking_for


def table_path(catalog: Catalog, ws: Workspace, name: str) -> Path:
    """``lake/<name>`` or ``curated/<name>`` depending on the dataset's zone."""
    return ws.path(catalog.dataset(name).zone, name)


def read_dataset(
    catalog: Catalog,
    ws: Workspace,
    name: str,
    *,
    columns: list[str] | None = None,
    version: int | None = None,
    user: str | Viewer | None = None,
) -> dd.DataFrame:
    """A lazy Dask frame over a lake or curated table (latest version unless ``version``).

    With ``user`` (a :class:`~workbench.privacy.Viewer`, or a name whose roles come from
    ``workbench.serve.roles``), columns tagged ``pii`` are masked unless the user may see them.

    Examples
    --------
    >>> flights = read_dataset(catalog, ws, "flights", columns=["carrier"])  # doctest: +SKIP
    >>> people = read_dataset(catalog, ws, "customers", user="bob")  # doctest: +SKIP
    """
    frame = read_table(table_path(catalog, ws, name), columns=columns, version=version)
    if user is None:
        return frame
    viewer = user if isinstance(user, Viewer) else Viewer.from_config(user)
    masking = masking_for(catalog, name, viewer)
    if masking is None:
        return frame
    return frame.map_partitions(masking.apply, meta=masking.apply(frame._meta))
