"""The landing zone: source files copied exactly as received, with a manifest per batch."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.io.csvfile import non_empty_lines, read_bytes
from workbench.io.workspace import Workspace, read_json, write_json_atomic

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class LandedFile:
    name: str
    source: str
    sha256: str
    bytes: int
    rows: int


@dataclass(frozen=True)
class Batch:
    """One landed delivery of a dataset: ``landing/<dataset>/<batch_id>/``."""

    dataset: str
    batch_id: str
    landed_at: str
    files: tuple[LandedFile, ...]
    reused: bool = False

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def paths(self, ws: Workspace) -> list[Path]:
        return [ws.path("landing", self.dataset, self.batch_id, f.name) for f in self.files]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_data_lines(path: Path) -> int:
    """Data rows of a delimited text file as the reader sees them: non-empty lines after the
    header, through .zip or .gz compression."""
    return max(len(non_empty_lines(read_bytes(path))) - 1, 0)


def land(ws: Workspace, dataset: str, sources: list[Path]) -> Batch:
    """Copy ``sources`` into a new batch; a set of files already landed is not copied again."""
    digests = [sha256_of(p) for p in sources]
    content = hashlib.sha256("".join(digests).encode()).hexdigest()[:10]
    batch_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{content}"
    existing = _find_batch(ws, dataset, digests)
    if existing is not None:
        return Batch(**{**asdict(existing), "files": existing.files, "reused": True})
    folder = ws.path("landing", dataset, batch_id)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A staging folder of its own: two landings in the same second must not share one.
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{batch_id}.", suffix=".tmp"))
    staging.chmod(0o755)  # mkdtemp makes 0700; landed files are meant to be read by others
    files = []
    for src, digest in zip(sources, digests, strict=True):
        shutil.copy2(src, staging / src.name)
        files.append(
            LandedFile(
                src.name, str(src), digest, src.stat().st_size, count_data_lines(staging / src.name)
            )
        )
    batch = Batch(dataset, batch_id, dt.datetime.now(dt.UTC).isoformat(), tuple(files))
    write_json_atomic(staging / MANIFEST, asdict(batch) | {"reused": False})
    staging.rename(folder)  # the batch appears whole or not at all
    return batch


def read_batch(folder: Path) -> Batch:
    data = read_json(folder / MANIFEST)
    data["files"] = tuple(LandedFile(**f) for f in data["files"])
    return Batch(**data)


def list_batches(ws: Workspace, dataset: str) -> list[Batch]:
    root = ws.path("landing", dataset)
    if not root.exists():
        return []
    return [
        read_batch(p)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists()
    ]


def _find_batch(ws: Workspace, dataset: str, digests: list[str]) -> Batch | None:
    for batch in list_batches(ws, dataset):
        if [f.sha256 for f in batch.files] == digests:
            return batch
    return None
