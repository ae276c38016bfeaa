"""Is a lake table behind its source? The check a quarantine release makes of its references.

A release re-checks rows against the lake's reference tables as they are now. When the user
fixed a reference file (added the missing store to ``stores.csv``) but did not land and promote
it, the release would fail the same rows again without saying why; these checks name the table
and the command that brings it up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.catalog.models import Catalog
from workbench.errors import WorkbenchError
from workbench.io.sources import resolve_source
from workbench.io.workspace import Workspace
from workbench.validation.check import references_needed
from workbench.zones.landing import list_batches, sha256_of
from workbench.zones.retention import promoted_batches


@dataclass(frozen=True)
class Behind:
    """A lake table older than its landed batch or its source files, and the fix."""

    dataset: str
    reason: str
    command: str

    def __str__(self) -> str:
        return f"{self.dataset}: {self.reason}; run `{self.command}`"


def lake_behind(catalog: Catalog, ws: Workspace, name: str) -> Behind | None:
    """Why the lake table ``name`` does not hold its latest source, or None when it does."""
    command = f"workbench run {name}" + _catalog_option(catalog)
    landed = list_batches(ws, name)
    if not landed:
        return Behind(name, "nothing landed yet", command)
    latest = landed[-1]
    if latest.batch_id not in promoted_batches(ws, name):
        return Behind(
            name, f"its latest landed batch {latest.batch_id} is not in the lake", command
        )
    changed = _changed_sources(catalog, name, {f.sha256 for f in latest.files})
    if changed:
        files = ", ".join(p.name for p in changed)
        return Behind(
            name, f"{files} changed since its last landing (batch {latest.batch_id})", command
        )
    return None


def references_behind(catalog: Catalog, ws: Workspace, name: str) -> list[Behind]:
    """The reference tables of ``name``'s rules that are behind their sources."""
    found = (lake_behind(catalog, ws, ref) for ref, _ in references_needed(catalog.datasets[name]))
    return [b for b in found if b is not None]


def _changed_sources(catalog: Catalog, name: str, landed: set[str]) -> list[Path]:
    """Source files whose content (sha256) is not among the latest batch's files."""
    base = catalog.path.parent if catalog.path else None
    try:
        sources = resolve_source(catalog.datasets[name].source.path, base)
    except (WorkbenchError, OSError):  # an unreachable source says nothing about the lake
        return []
    return [p for p in sources if sha256_of(p) not in landed]


def _catalog_option(catalog: Catalog) -> str:
    path = catalog.path
    return "" if path is None or path.name == "data_catalog.yaml" else f" -c {path}"
