"""The landing zone: source files copied exactly as received, with a manifest per batch.

Each file keeps its path relative to the folder its source matched in (``a/part.csv`` and
``b/part.csv`` stay two files), and its manifest entry records the sha256, the data rows and
where its blocks start, found in the same pass, so promotion can read one block per task.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import config
from workbench.io.gzseek import record_seek_points
from workbench.io.textscan import GRAIN, TextScan, scan_text
from workbench.io.workspace import Workspace, read_json, write_json_atomic

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class LandedFile:
    name: str
    source: str
    sha256: str
    bytes: int
    rows: int
    blocks: tuple[tuple[int, int], ...] = ()  # (offset in the text, line number there)
    text_bytes: int = 0  # size of the (decompressed) text

    def scan(self, path: Path) -> TextScan:
        """The block plan; manifests older than block reading get it by scanning now."""
        if self.blocks:
            return TextScan(self.rows, tuple(map(tuple, self.blocks)), self.text_bytes)
        return scan_text(path, config.get("block-bytes"))


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


def landed_names(sources: list[Path]) -> list[str]:
    """Each file's path relative to the deepest folder holding all of them: base names for
    files of one folder, ``a/part.csv`` and ``b/part.csv`` for a glob over folders."""
    if len(sources) == 1:
        return [sources[0].name]
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in sources]))
    return [p.resolve().relative_to(root).as_posix() for p in sources]


def land(ws: Workspace, dataset: str, sources: list[Path], *, skip: Collection[str] = ()) -> Batch:
    """Copy ``sources`` into a new batch; a set of files already landed is not copied again.

    Files whose sha256 is in ``skip`` (already promoted by an appending dataset) are left out;
    when nothing is left, the latest batch is returned as reused.
    """
    named = list(zip(landed_names(sources), sources, strict=True))
    digests = {name: sha256_of(p) for name, p in named}
    named = [(n, p) for n, p in named if digests[n] not in skip]
    existing = _find_batch(ws, dataset, [digests[n] for n, _ in named])
    if existing is None and not named:
        existing = (list_batches(ws, dataset) or [None])[-1]
    if existing is not None:
        return Batch(**{**asdict(existing), "files": existing.files, "reused": True})
    content = hashlib.sha256("".join(digests[n] for n, _ in named).encode()).hexdigest()[:10]
    batch_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{content}"
    folder = ws.path("landing", dataset, batch_id)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A staging folder of its own: two landings in the same second must not share one.
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{batch_id}.", suffix=".tmp"))
    staging.chmod(0o755)  # mkdtemp makes 0700; landed files are meant to be read by others
    files = [_land_file(staging, name, src, digests[name]) for name, src in named]
    batch = Batch(dataset, batch_id, dt.datetime.now(dt.UTC).isoformat(), tuple(files))
    write_json_atomic(staging / MANIFEST, asdict(batch) | {"reused": False})
    staging.rename(folder)  # the batch appears whole or not at all
    return batch


def _land_file(staging: Path, name: str, src: Path, digest: str) -> LandedFile:
    target = staging / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, target)
    scan = scan_text(target, config.get("block-bytes"))
    if target.suffix == ".gz" and len(scan.blocks) > 1:
        record_seek_points(target, config.get("block-bytes") // GRAIN)
    return LandedFile(name, str(src), digest, src.stat().st_size, scan.rows, scan.blocks, scan.size)


def read_batch(folder: Path) -> Batch:
    data = read_json(folder / MANIFEST)
    data["files"] = tuple(
        LandedFile(**{**f, "blocks": tuple(map(tuple, f.get("blocks", ())))}) for f in data["files"]
    )
    return Batch(**data)


def list_batches(ws: Workspace, dataset: str) -> list[Batch]:
    """The dataset's batches, oldest first (by landing time: batch ids of one second sort by
    their content hash, not by time)."""
    root = ws.path("landing", dataset)
    if not root.exists():
        return []
    batches = [
        read_batch(p)
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists()
    ]
    return sorted(batches, key=lambda b: (b.landed_at, b.batch_id))


def _find_batch(ws: Workspace, dataset: str, digests: list[str]) -> Batch | None:
    for batch in list_batches(ws, dataset):
        if [f.sha256 for f in batch.files] == digests:
            return batch
    return None
