"""Helpers for the ML tests: editable copies of the demo catalog and workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import workbench as wb

from .conftest import DEMO_CATALOG


def catalog_with(tmp_path: Path, extra_models: str = "", replace: dict | None = None) -> Path:
    """The demo catalog with more entries under `models:` (it is the file's last section)."""
    text = DEMO_CATALOG.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "catalog.yaml"
    path.write_text(text.rstrip("\n") + "\n" + extra_models)
    return path


def copy_workspace(demo_ws: wb.Workspace, dest: Path) -> wb.Workspace:
    """The curated, features and models folders of the demo run: enough to train and score."""
    for part in ("curated", "features", "models"):
        shutil.copytree(demo_ws.path(part), dest / part, symlinks=True)
    for f in (dest / "models").rglob("*"):
        if f.is_file():
            f.chmod(0o644)
    return wb.Workspace(dest.resolve())
