"""Checkpoints of long fits: resumed only when their signature holds.

A fit saves ``step-<n>.<ext>`` files under ``models/<name>/.checkpoints/<fit key>/``; a fit killed
midway resumes from the newest one when run again with the same data and parameters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from workbench.errors import SignatureError
from workbench.ml import signing

log = logging.getLogger(__name__)


class Checkpoint:
    """Progress of one fit in a folder: ``step-<n>.<ext>`` files, the newest kept, each with a
    signature in ``step-<n>.<ext>.sig``.

    Files are written beside and renamed into place (the signature first), so a kill leaves the
    previous checkpoint whole; several workers writing the same step is harmless. The key is
    scoped to this fit (:meth:`SigningKey.scoped`): workers sign with it but cannot sign models.
    A checkpoint whose signature fails is not resumed: the fit starts from scratch, with a
    warning naming the file.
    """

    def __init__(self, folder: Path, every: int, key: signing.SigningKey) -> None:
        self.folder, self.every = Path(folder), every
        self.key = key.scoped(f"checkpoint:{self.folder.name}")

    def latest(self) -> tuple[int, bytes] | None:
        if not self.folder.exists():
            return None
        found = sorted(
            (p for p in self.folder.glob("step-*") if p.suffix != ".sig"), key=_step_number
        )
        if not found:
            return None
        data = found[-1].read_bytes()
        try:
            self._verify(found[-1], data)
        except SignatureError as exc:
            log.warning("not resuming: %s", exc)
            return None
        return _step_number(found[-1]), data

    def save(self, step: int, data: bytes, ext: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{step:06d}.{ext}"
        for target, content in (
            (path.with_name(path.name + ".sig"), json.dumps(self._signature(path, data))),
            (path, data),
        ):
            tmp = self.folder / f".{target.name}.{os.getpid()}.tmp"
            tmp.write_bytes(content.encode() if isinstance(content, str) else content)
            os.replace(tmp, target)
        for old in self.folder.glob("step-*"):
            if _step_number(old) < step:
                old.unlink(missing_ok=True)

    def clear(self) -> None:
        if self.folder.exists():
            for p in self.folder.iterdir():
                p.unlink(missing_ok=True)
            self.folder.rmdir()

    def __call__(self, env: Any) -> None:
        """LightGBM callback (runs on every worker): save the booster every ``every`` rounds."""
        done = env.iteration + 1
        if done % self.every == 0 and done < env.end_iteration:
            self.save(done, env.model.model_to_string().encode(), "txt")

    def _manifest(self, path: Path, data: bytes) -> dict[str, Any]:
        return {
            "kind": "checkpoint",
            "fit": self.folder.name,
            "file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
        }

    def _signature(self, path: Path, data: bytes) -> dict[str, str]:
        return signing.sign(self._manifest(path, data), self.key)

    def _verify(self, path: Path, data: bytes) -> None:
        sig = path.with_name(path.name + ".sig")
        stored = json.loads(sig.read_text()) if sig.exists() else None
        keys = {self.key.key_id: self.key}  # a checkpoint signed with a rotated key: refit
        fix = "the fit starts from scratch."
        signing.verify(self._manifest(path, data), stored, where=str(path), fix=fix, keys=keys)


def _step_number(path: Path) -> int:
    return int(path.name[5:].split(".")[0])
