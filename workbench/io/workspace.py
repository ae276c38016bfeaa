"""The workspace on disk: every output path is resolved inside its root, nowhere else."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import config
from workbench.errors import WorkspaceError


@dataclass(frozen=True)
class Workspace:
    """Root folder of one workbench deployment (``landing/``, ``lake/``, ``cubes/``, ...)."""

    root: Path

    @classmethod
    def for_catalog(cls, catalog: Any, root: str | os.PathLike[str] | None = None) -> Workspace:
        """Argument > ``workbench.workspace`` config > the catalog's ``workspace:`` entry.

        A relative path is taken from the catalog file's folder, so runs do not depend on the
        current directory.
        """
        chosen = Path(config.get("workspace", root) or catalog.workspace).expanduser()
        if not chosen.is_absolute():
            base = catalog.path.parent if catalog.path else Path.cwd()
            chosen = base / chosen
        chosen.mkdir(parents=True, exist_ok=True)
        return cls(chosen.resolve())

    def path(self, *parts: str) -> Path:
        """Join ``parts`` under the root; refuse anything that escapes it (``..``, absolute)."""
        target = self.root.joinpath(*parts).resolve()
        if target != self.root and self.root not in target.parents:
            raise WorkspaceError(
                f"path {'/'.join(parts)!r} leaves the workspace {self.root}; "
                "dataset and file names must not contain '..' or start with '/'."
            )
        return target

    @property
    def runs_db(self) -> Path:
        return self.path("runs.sqlite")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WorkspaceError(
            f"{path} does not exist; run the step that writes it first (`workbench run`)."
        ) from exc
