"""The model registry on disk: immutable, signed versions, aliases, read back safely.

``models/<name>/<version>/`` holds the model file (LightGBM text, or skops for scikit-learn and
dask-ml models; never pickle), ``metadata.json`` with the file's sha256, parameters, metrics,
feature set and data versions, package versions and the git commit, and ``signature.json``: an
HMAC of both files' sha256 and the model's name and version under a key kept outside the
workspace (:mod:`workbench.ml.signing`). The metadata is verified whenever it is read, the model
file before it is loaded. A version folder appears whole (written beside, then renamed) and its
files are made read-only. ``aliases.json`` names the ``candidate`` and ``production`` versions
and keeps each alias's past versions, so a promotion can be rolled back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ModelNotFound, SignatureError, WorkbenchError
from workbench.io.workspace import Workspace, read_json, write_json_atomic
from workbench.ml import native, signing
from workbench.ml.estimators import Predictor, model_from_bytes, trusted_types

METADATA = "metadata.json"
SIGNATURE = "signature.json"
ALIASES = "aliases.json"
ALIAS_NAMES = ("candidate", "production")
_PACKAGES = (
    "workbench",
    "dask",
    "distributed",
    "dask-ml",
    "lightgbm",
    "scikit-learn",
    "skops",
    "pandas",
    "numpy",
)


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: int
    path: Path
    metadata: dict


def register_model(
    ws: Workspace, name: str, predictor: Predictor, metadata: dict
) -> RegisteredModel:
    """Store ``predictor`` as a new version; the folder appears complete and is never rewritten."""
    root = ws.path("models", name)
    root.mkdir(parents=True, exist_ok=True)
    data = predictor.to_bytes()
    key = signing.current_key(create=True)  # before anything is written: no unsigned version
    versions = _versions(root)
    version = (versions[-1] + 1) if versions else 1
    staging = root / f".v{version}.{os.getpid()}.tmp"
    staging.mkdir()
    (staging / predictor.file_name).write_bytes(data)
    full = metadata | {
        "name": name,
        "version": version,
        "kind": predictor.kind,
        "task": predictor.task,
        "file": predictor.file_name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "features": predictor.features,
        "categories": predictor.categories,
        "registered_at": dt.datetime.now(dt.UTC).isoformat(),
        "packages": _package_versions(),
        "git_commit": _git_commit(),
    }
    _write_signed(staging, full, key)
    while True:
        try:
            os.rename(staging, root / str(version))
            break
        except OSError:  # another process registered this number first: take the next one
            if not (root / str(version)).exists():
                raise
            version += 1
            full["version"] = version
            _write_signed(staging, full, key)
    return RegisteredModel(name, version, root / str(version), full)


def list_versions(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """Every registered version, oldest first: version, time, estimator, metrics, aliases.

    Examples
    --------
    >>> [v["version"] for v in list_versions(ws, "departure_delay")]  # doctest: +SKIP
    [1, 2]
    """
    root = ws.path("models", name)
    if not root.exists():
        return []
    held = aliases(ws, name)
    out = []
    for v in _versions(root):
        meta = read_json(root / str(v) / METADATA)
        out.append(
            {
                "version": v,
                "registered_at": meta["registered_at"],
                "estimator": meta.get("estimator"),
                "metrics": meta.get("metrics", {}),
                "feature_version": meta.get("data", {}).get("feature_version"),
                "aliases": [a for a, held_v in held.items() if held_v == v],
            }
        )
    return out


def model_names(ws: Workspace) -> list[str]:
    """Names with at least one registered version."""
    root = ws.path("models")
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _versions(p))


def aliases(ws: Workspace, name: str) -> dict[str, int]:
    """Alias -> version, e.g. ``{"production": 2, "candidate": 3}``."""
    return {a: stack[-1] for a, stack in _alias_state(ws, name)["stacks"].items() if stack}


def resolve_version(
    ws: Workspace, name: str, version: int | None = None, alias: str | None = None
) -> int:
    """The version asked for: explicit, by alias, else production, else the latest."""
    root = ws.path("models", name)
    versions = _versions(root) if root.exists() else []
    # The aliases (signed) are read only when no version is given.
    held = aliases(ws, name) if versions and not version else {}
    if alias is not None and not version and alias not in held:
        raise ModelNotFound(
            f"model {name!r} has no {alias!r} version (aliases: {held or 'none'}); "
            f"promote one with `workbench model promote {name}`."
        )
    chosen = version or (held[alias] if alias else held.get("production"))
    chosen = chosen or (versions[-1] if versions else None)
    if chosen is None or chosen not in versions:
        raise ModelNotFound(
            f"no model {name!r} version {chosen or 'any'} in {root}; registered versions: "
            f"{versions or 'none'}. Train it with `workbench run {name}`."
        )
    return chosen


def load_predictor(
    ws: Workspace, name: str, version: int | None = None, *, alias: str | None = None
) -> Predictor:
    """The fitted model of a version (default: production, else latest), sha256 verified.

    Examples
    --------
    >>> p = load_predictor(ws, "departure_delay", alias="production")  # doctest: +SKIP
    >>> p.predict(rows)  # doctest: +SKIP
    """
    chosen = resolve_version(ws, name, version, alias)
    folder = ws.path("models", name, str(chosen))
    meta = verify_version(ws, name, chosen)
    data = (folder / meta["file"]).read_bytes()
    # The signed metadata holds the model file's sha256: checked on the very bytes loaded.
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise SignatureError(
            f"{folder / meta['file']} does not match the sha256 in its metadata: the file was "
            f"changed after registration. Refusing to load it; retrain with "
            f"`workbench model train {name}`."
        )
    trusted = trusted_types(meta.get("estimator"))
    model = model_from_bytes(meta["kind"], data, str(folder / meta["file"]), trusted)
    return Predictor(meta["kind"], model, meta["task"], meta["features"], meta["categories"], meta)


def load_model(
    ws: Workspace, name: str, version: int | None = None, *, alias: str | None = None
) -> tuple[Any, dict]:
    """The model object (a LightGBM ``Booster`` or a scikit-learn pipeline) and its metadata."""
    predictor = load_predictor(ws, name, version, alias=alias)
    return predictor.model, predictor.fit_info


def model_metadata(ws: Workspace, name: str, version: int | None = None, alias: str | None = None):
    """``metadata.json`` of a version, its signature verified, without loading the model."""
    return verify_version(ws, name, resolve_version(ws, name, version, alias))


def verify_version(ws: Workspace, name: str, version: int, *, model_file: bool = False) -> dict:
    """The metadata of a version once its signature holds, and (``model_file``) the sha256 of
    its model file too; raises :class:`SignatureError` saying what to do otherwise.

    Examples
    --------
    >>> verify_version(ws, "departure_delay", 2, model_file=True)["sha256"]  # doctest: +SKIP
    '9f2c...'
    """
    folder = ws.path("models", name, str(version))
    path = folder / SIGNATURE
    stored = read_json(path) if path.exists() else None
    signing.verify(
        (stored or {}).get("manifest", {}),
        stored,
        where=str(path if stored else folder),
        fix=_unsigned_fix(name, version) if stored is None else _retrain_fix(name),
    )
    manifest = stored["manifest"]
    if (manifest.get("model"), manifest.get("version")) != (name, version):
        raise SignatureError(
            f"{path} signs model {manifest.get('model')!r} version {manifest.get('version')}, "
            f"not {name!r} version {version}: the folder was copied or renamed. Refusing it; "
            f"{_retrain_fix(name)}"
        )
    _check_digest(folder, METADATA, manifest, name)
    meta = read_json(folder / METADATA)
    if model_file:
        _check_digest(folder, meta["file"], manifest, name)
    return meta


def verify_model(ws: Workspace, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """Every version of ``name`` (or one) checked as loading would: version, ok, key id,
    compiled forests checked, and the problem found (None when ok)."""
    versions = [resolve_version(ws, name, version)] if version else _versions_of(ws, name)
    if not versions:
        resolve_version(ws, name)  # raises ModelNotFound, saying what to do
    out = []
    for v in versions:
        folder = ws.path("models", name, str(v))
        stored = read_json(folder / SIGNATURE) if (folder / SIGNATURE).exists() else {}
        row = {"version": v, "ok": True, "key_id": stored.get("key_id"), "forests": 0}
        try:
            verify_version(ws, name, v, model_file=True)
            for side in sorted(folder.glob("native/*.json")):
                native.verify_side(side)
                row["forests"] += 1
        except SignatureError as exc:
            row |= {"ok": False, "problem": str(exc)}
        out.append(row | {"problem": row.get("problem")})
    return out


def resign_version(ws: Workspace, name: str, version: int, *, trust_unsigned: bool = False) -> str:
    """Sign a version again with the current key, once it verifies under an accepted (old) key,
    or, with ``trust_unsigned``, when it has no signature and its sha256 matches; compiled
    forests beside it are signed again too. Returns the new key id. For key rotation
    (docs/signing.md): never use it to bless files you did not check."""
    folder = ws.path("models", name, str(version))
    if (folder / SIGNATURE).exists() or not trust_unsigned:
        meta = verify_version(ws, name, version, model_file=True)
    else:
        meta = read_json(folder / METADATA)
        if signing.sha256_file(folder / meta["file"]) != meta["sha256"]:
            raise SignatureError(
                f"{folder / meta['file']} does not match the sha256 in its metadata; it is not "
                f"signed again. {_retrain_fix(name)}"
            )
    key = signing.current_key(create=True)
    for side in sorted(folder.glob("native/*.json")):
        native.resign(side, key)
    _write_signature(folder, name, version, [METADATA, meta["file"]], key)
    return key.key_id


def _write_signed(folder: Path, meta: dict, key: signing.SigningKey) -> None:
    """Write ``metadata.json`` and its ``signature.json`` into a staging folder, read-only."""
    if (folder / METADATA).exists():
        (folder / METADATA).chmod(0o644)
    write_json_atomic(folder / METADATA, meta)
    _write_signature(folder, meta["name"], meta["version"], [METADATA, meta["file"]], key)
    for f in folder.iterdir():
        f.chmod(0o444)


def _write_signature(
    folder: Path, name: str, version: int, files: list[str], key: signing.SigningKey
) -> None:
    manifest = {
        "kind": "model-version",
        "model": name,
        "version": version,
        "files": {f: signing.sha256_file(folder / f) for f in sorted(files)},
    }
    write_json_atomic(folder / SIGNATURE, {"manifest": manifest, **signing.sign(manifest, key)})
    (folder / SIGNATURE).chmod(0o444)


def _check_digest(folder: Path, file: str, manifest: dict, name: str) -> None:
    expected = manifest.get("files", {}).get(file)
    if expected is None or signing.sha256_file(folder / file) != expected:
        raise SignatureError(
            f"{folder / file} does not match the sha256 its signature ({SIGNATURE}) covers: the "
            f"file was changed after registration. Refusing to load it; {_retrain_fix(name)}"
        )


def _retrain_fix(name: str) -> str:
    return (
        f"retrain with `workbench model train {name}`; `workbench model verify {name}` checks "
        "every version (docs/signing.md)."
    )


def _unsigned_fix(name: str, version: int) -> str:
    return (
        f"if it was registered before signing and you trust it, sign it with `workbench model "
        f"resign {name} --version {version} --trust-unsigned`; otherwise {_retrain_fix(name)}"
    )


def set_alias(ws: Workspace, name: str, alias: str, version: int, reason: str) -> None:
    """Point ``alias`` at ``version`` (pushed on the alias's stack, so it can be rolled back)."""
    resolve_version(ws, name, version)
    state = _alias_state(ws, name)
    stack = state["stacks"].setdefault(alias, [])
    previous = stack[-1] if stack else None
    if previous != version:
        stack.append(version)
    state["history"].append(_event(alias, version, previous, reason))
    _write_aliases(ws, name, state)


def rollback(ws: Workspace, name: str, alias: str = "production") -> int:
    """Move ``alias`` back to the version it held before; returns that version."""
    state = _alias_state(ws, name)
    stack = state["stacks"].get(alias, [])
    if len(stack) < 2:
        raise WorkbenchError(
            f"model {name!r}: {alias!r} has no earlier version to roll back to "
            f"(history: {stack or 'empty'})."
        )
    current = stack.pop()
    state["history"].append(_event(alias, stack[-1], current, "rollback"))
    _write_aliases(ws, name, state)
    return stack[-1]


def alias_history(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """Every alias move, oldest first: alias, version, previous, time, reason."""
    return _alias_state(ws, name)["history"]


def _event(alias: str, version: int, previous: int | None, reason: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "version": version,
        "previous": previous,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "reason": reason,
    }


def _alias_state(ws: Workspace, name: str, *, trust_unsigned: bool = False) -> dict[str, Any]:
    """The aliases' stacks and history, their signature verified: whoever may write the
    workspace could otherwise point ``production`` at any version."""
    path = ws.path("models", name, ALIASES)
    if not path.exists():
        return {"stacks": {}, "history": []}
    stored = read_json(path)
    state = {"stacks": stored.get("stacks", {}), "history": stored.get("history", [])}
    if trust_unsigned and "signature" not in stored:
        return state
    signing.verify(
        {"model": name, **state},
        stored.get("signature"),
        where=str(path),
        fix=(
            f"if you trust this file as it is, sign it with `workbench model resign {name} "
            "--trust-unsigned` (docs/signing.md); otherwise restore it from a backup."
        ),
    )
    return state


def _write_aliases(ws: Workspace, name: str, state: dict[str, Any]) -> str:
    """Write the aliases with their signature (the model's name is signed too, so the file of
    one model does not pass for another's); returns the key id."""
    signature = signing.sign({"model": name, **state}, signing.current_key(create=True))
    write_json_atomic(ws.path("models", name, ALIASES), {**state, "signature": signature})
    return signature["key_id"]


def resign_aliases(ws: Workspace, name: str, *, trust_unsigned: bool = False) -> str | None:
    """Sign the aliases again with the current key, once they verify under an accepted key
    (or, with ``trust_unsigned``, when they have no signature); the key id, None without
    aliases."""
    if not ws.path("models", name, ALIASES).exists():
        return None
    return _write_aliases(ws, name, _alias_state(ws, name, trust_unsigned=trust_unsigned))


def _versions_of(ws: Workspace, name: str) -> list[int]:
    root = ws.path("models", name)
    return _versions(root) if root.exists() else []


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
