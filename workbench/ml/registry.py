"""The model registry on disk: immutable versions with a checksum, read back safely.

Models are stored in LightGBM's own text format (never pickle), with ``metadata.json``
holding the file's sha256, parameters, metrics and data lineage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import lightgbm

from workbench.errors import ModelNotFound, WorkbenchError
from workbench.io.workspace import Workspace, read_json, write_json_atomic

MODEL_FILE = "model.txt"
METADATA = "metadata.json"
_PACKAGES = ("workbench", "dask", "distributed", "lightgbm", "pandas", "numpy", "scikit-learn")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: int
    path: Path
    metadata: dict


def register_model(ws: Workspace, name: str, model_text: str, metadata: dict) -> RegisteredModel:
    """Store a new version; the folder appears complete (rename) and is never rewritten."""
    root = ws.path("models", name)
    root.mkdir(parents=True, exist_ok=True)
    versions = _versions(root)
    version = (versions[-1] + 1) if versions else 1
    staging = root / f".v{version}.tmp"
    staging.mkdir()
    (staging / MODEL_FILE).write_text(model_text, encoding="utf-8")
    digest = hashlib.sha256(model_text.encode()).hexdigest()
    full = metadata | {
        "name": name,
        "version": version,
        "sha256": digest,
        "file": MODEL_FILE,
        "registered_at": dt.datetime.now(dt.UTC).isoformat(),
        "packages": _package_versions(),
        "git_commit": _git_commit(),
    }
    write_json_atomic(staging / METADATA, full)
    os.rename(staging, root / str(version))
    return RegisteredModel(name, version, root / str(version), full)


def load_model(
    ws: Workspace, name: str, version: int | None = None
) -> tuple[lightgbm.Booster, dict]:
    """The booster and its metadata; refuses a model file whose sha256 changed."""
    root = ws.path("models", name)
    versions = _versions(root) if root.exists() else []
    if not versions or (version is not None and version not in versions):
        raise ModelNotFound(
            f"no model {name!r} version {version or 'any'} in {root}; "
            f"registered versions: {versions or 'none'}. Train it with "
            f"`workbench run {name}`."
        )
    folder = root / str(version or versions[-1])
    meta = read_json(folder / METADATA)
    text = (folder / MODEL_FILE).read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != meta["sha256"]:
        raise WorkbenchError(
            f"{folder / MODEL_FILE} does not match the sha256 in its metadata: "
            "the file was changed after registration. Retrain instead of editing."
        )
    return lightgbm.Booster(model_str=text), meta


def _versions(root: Path) -> list[int]:
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def _package_versions() -> dict[str, str]:
    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
