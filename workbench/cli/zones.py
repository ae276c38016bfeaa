"""`workbench quarantine|lake|landing`: the zones' tables and files."""

from __future__ import annotations

import json
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from workbench.cli import (
    DEFAULT_CATALOG,
    CatalogOpt,
    ClusterOpt,
    JsonOpt,
    WorkspaceOpt,
    _open,
    _print_json,
    _reported,
    _session,
    console,
    lake_app,
    landing_app,
    quarantine_app,
)


@quarantine_app.command("show")
def quarantine_show(
    dataset: str,
    batch: Annotated[str | None, typer.Option(help="only this batch")] = None,
    limit: Annotated[int, typer.Option(help="rows to print")] = 20,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Quarantined rows with batch, file, line and reasons."""
    from workbench.zones.quarantine import quarantined

    with _reported():
        _, ws = _open(catalog, workspace)
        frame = quarantined(ws, dataset, batch).compute()
    if as_json:
        _print_json(json.loads(frame.head(limit).to_json(orient="records")))
        return
    counts = frame.groupby(["_batch_id", "_reasons"]).size().reset_index(name="rows")
    summary = Table("batch", "reasons", "rows", title=f"{dataset}: {len(frame):,} rows quarantined")
    for r in counts.itertuples(index=False):
        summary.add_row(r._0, r._1, f"{r.rows:,}")
    console.print(summary)
    shown = frame.head(limit)
    rows = Table(*shown.columns[:12], title=f"first {len(shown)} rows")
    for r in shown.iloc[:, :12].itertuples(index=False):
        rows.add_row(*("" if pd.isna(v) else str(v) for v in r))
    console.print(rows)


@quarantine_app.command("release")
def quarantine_release(
    dataset: str,
    batch: Annotated[str, typer.Option(help="the batch to re-validate")],
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-check a batch's quarantined rows with the current rules; promote what passes."""
    from workbench.zones.quarantine import batch_balance, release_batch

    with _session(catalog, workspace, cluster) as (cat, ws):
        result = release_batch(cat, ws, dataset, batch)
        balance = batch_balance(ws, dataset, batch)
    if as_json:
        _print_json({**result.__dict__, "balance": balance})
        return
    console.print(
        f"{dataset} batch {batch}: {result.released:,} rows pass now and are in the "
        f"lake, {result.still_quarantined:,} stay in quarantine. Batch balance: "
        f"{balance['promoted']:,} promoted + {balance['quarantined']:,} quarantined = "
        f"{balance['total']:,}."
    )


@lake_app.command("history")
def lake_history(
    dataset: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Versions of a lake, curated or quarantine table (read any with version=N)."""
    from workbench.io.delta import history, table_rows
    from workbench.zones.tables import table_path

    with _reported():
        cat, ws = _open(catalog, workspace)
        path = table_path(cat, ws, dataset)
        versions = history(path)
    rows = [
        {
            "version": v["version"],
            "time": pd.Timestamp(v.get("timestamp", 0), unit="ms", tz="UTC").isoformat(),
            "operation": v.get("workbench.operation", v.get("operation")),
            "batch": v.get("batch", ""),
            "rows": table_rows(path, v["version"]),
        }
        for v in versions
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("version", "committed at", "operation", "batch", "rows", title=str(path))
    for r in rows:
        table.add_row(
            str(r["version"]), str(r["time"]), r["operation"], r["batch"], f"{r['rows']:,}"
        )
    console.print(table)


@lake_app.command("verify")
def lake_verify(
    datasets: Annotated[
        list[str] | None, typer.Argument(help="lake datasets; default: all of them")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="verify this past lake version (one dataset)")
    ] = None,
    samples: Annotated[int, typer.Option(help="differences to list per dataset")] = 20,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove the lake equals its landed files, line by line; exit 1 on any difference."""
    from workbench.zones.verify import verify_lake

    if version is not None and len(datasets or []) != 1:
        console.print("--version names a version of one dataset: `lake verify DATASET --version N`")
        raise typer.Exit(2)
    with _session(catalog, workspace, cluster) as (cat, ws):
        names = datasets or [n for n, d in cat.datasets.items() if d.zone == "lake"]
        results = [verify_lake(cat, ws, n, version=version, samples=samples) for n in names]
    if as_json:
        _print_json([r.to_dict() for r in results])
    else:
        for result in results:
            _print_verification(result, console)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def verify_promoted(catalog, workspace, cluster, run, out) -> bool:
    """`workbench run --verify`: verify each lake dataset the run promoted; True if all match."""
    from workbench.zones.verify import verify_lake

    names = [
        s.step.removeprefix("promote:")
        for s in run.steps
        if s.step.startswith("promote:") and s.status == "succeeded"
    ]
    if not names:
        return True
    with _session(catalog, workspace, cluster) as (cat, ws):
        results = [verify_lake(cat, ws, name) for name in names]
    for result in results:
        _print_verification(result, out)
    return all(r.ok for r in results)


def _print_verification(result, out) -> None:
    table = Table(
        "batch", "file", "blocks", "lines", "lake", "quarantine", "findings",
        title=f"{result.dataset}: lake v{result.lake_version}, "
        f"quarantine v{result.quarantine_version}",
    )  # fmt: skip
    for f in result.files:
        table.add_row(
            f.batch_id, f.file, str(f.blocks), f"{f.lines:,}", f"{f.in_lake:,}",
            f"{f.quarantined:,}", _findings(f),
        )  # fmt: skip
    out.print(table)
    for u in result.unchecked:
        out.print(
            f"  {u.batch_id}/{u.file}: {u.in_lake:,} lake and {u.quarantined:,} quarantined "
            f"rows not checked ({u.reason})"
        )
    for problem in result.schema:
        out.print(f"  [red]lake schema[/]: {problem}")
    if result.differences:
        diffs = Table("kind", "file", "line", "column", "lake", "source", title="differences")
        for d in result.differences:
            diffs.add_row(d.kind, d.file, str(d.line), d.column or "", d.stored, d.source)
        out.print(diffs)
    verdict = "[green]verified[/]" if result.ok else "[bold red]DIFFERENCES FOUND[/]"
    out.print(f"{result.dataset}: {verdict}, {result.rows_checked:,} rows checked")


def _findings(check) -> str:
    counts = {
        "missing": check.missing, "in both": check.in_both, "duplicated": check.duplicated,
        "extra": check.extra, "quarantine text": check.quarantine_text,
    }  # fmt: skip
    parts = [f"{k} {v:,}" for k, v in counts.items() if v]
    parts += [f"value {column} {n:,}" for column, n in check.values.items()]
    if check.landing_altered:
        parts.append("landing file altered")
    if check.block_plan:
        parts.append(f"block plan {check.block_plan}")
    return "; ".join(parts) or "[green]ok[/]"


@lake_app.command("vacuum")
def lake_vacuum(
    dataset: str,
    older_than: Annotated[
        str, typer.Option(help="keep what versions younger than this need")
    ] = "7d",
    dry_run: Annotated[bool, typer.Option(help="only list the files")] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete files of old table versions (and uncommitted leftovers) from disk."""
    from workbench.io.delta import vacuum
    from workbench.validation.dataset_rules import parse_age
    from workbench.zones.tables import table_path

    with _reported():
        cat, ws = _open(catalog, workspace)
        hours = int(parse_age(older_than).total_seconds() // 3600)
        removed = vacuum(table_path(cat, ws, dataset), older_than_hours=hours, dry_run=dry_run)
    if as_json:
        _print_json(removed)
    else:
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{dataset}: {verb} {len(removed)} files older than {older_than}")


@landing_app.command("gc")
def landing_gc(
    older_than: Annotated[
        str | None, typer.Option(help="e.g. 30d; default: catalog retention")
    ] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="only these datasets")] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove landed batches past retention; batches never promoted are always kept."""
    from workbench.zones.retention import gc_landing

    with _reported():
        cat, ws = _open(catalog, workspace)
        collected = gc_landing(cat, ws, older_than=older_than, datasets=dataset)
    if as_json:
        _print_json([c.__dict__ for c in collected])
        return
    for c in collected:
        console.print(
            f"{c.dataset}: removed {len(c.removed)}, kept {len(c.kept_unpromoted)} "
            f"never promoted, {len(c.kept_young)} younger than the limit"
        )
