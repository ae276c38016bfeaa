"""Landing retention: remove raw batches past their age, never one that was not promoted."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass

import pandas as pd

from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.validation.dataset_rules import parse_age
from workbench.validation.report import report_dir
from workbench.zones.landing import list_batches


@dataclass(frozen=True)
class Collected:
    dataset: str
    removed: tuple[str, ...]
    kept_unpromoted: tuple[str, ...]
    kept_young: tuple[str, ...]


def promoted_batches(ws: Workspace, name: str) -> set[str]:
    """Batches whose validation report says they were committed to the lake."""
    folder = report_dir(ws, name)
    if not folder.exists():
        return set()
    reports = (json.loads(p.read_text()) for p in folder.glob("*.json"))
    return {r["batch_id"] for r in reports if r.get("committed")}


def promoted_digests(ws: Workspace, name: str) -> set[str]:
    """sha256 of every landed file whose batch was committed to the lake."""
    done = promoted_batches(ws, name)
    return {f.sha256 for b in list_batches(ws, name) if b.batch_id in done for f in b.files}


def gc_landing(
    catalog: Catalog,
    ws: Workspace,
    *,
    older_than: str | None = None,
    datasets: list[str] | None = None,
    now: dt.datetime | None = None,
) -> list[Collected]:
    """Delete landed batches older than ``older_than`` (else each dataset's ``retention``)."""
    now = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    out = []
    for name in datasets or [n for n, d in catalog.datasets.items() if d.zone == "lake"]:
        age = older_than or catalog.dataset(name).retention
        if age is None:
            continue
        cutoff = now - parse_age(age)
        promoted = promoted_batches(ws, name)
        removed, unpromoted, young = [], [], []
        for batch in list_batches(ws, name):
            if pd.Timestamp(batch.landed_at) > cutoff:
                young.append(batch.batch_id)
            elif batch.batch_id not in promoted:
                unpromoted.append(batch.batch_id)
            else:
                shutil.rmtree(ws.path("landing", name, batch.batch_id))
                removed.append(batch.batch_id)
        out.append(Collected(name, tuple(removed), tuple(unpromoted), tuple(young)))
    return out
