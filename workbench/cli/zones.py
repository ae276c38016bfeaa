"""`workbench quarantine|lake|landing`: the zones' tables and files."""

from __future__ import annotations

import json
from typing import Annotated

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
    err,
    lake_app,
    landing_app,
    quarantine_app,
    step_lines,
)


@quarantine_app.command("show")
def quarantine_show(
    dataset: str,
    batch: Annotated[str | None, typer.Option(help="only this batch")] = None,
    limit: Annotated[int, typer.Option(help="rows to print")] = 20,
    all_columns: Annotated[
        bool, typer.Option("--all-columns", help="every column of the rows, not only why")
    ] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Quarantined rows: reason, file, line and the values that failed first; the rest with
    --all-columns or --json."""
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
    if all_columns:
        rows = Table(*shown.columns, title=f"first {len(shown)} rows")
        for r in shown.itertuples(index=False):
            rows.add_row(*(_text(v) for v in r))
    else:
        # Folded, never cut: at 80 columns a cut header (`_ba…`) told the user nothing.
        rows = Table(title=f"first {len(shown)} rows")
        for header in ("reasons", "file:line", "failing values"):
            rows.add_column(header, overflow="fold")
        for r in shown.to_dict("records"):
            rows.add_row(r["_reasons"], f"{r['_file']}:{r['_line']}", _failing_values(r))
    console.print(rows)


def _failing_values(row: dict) -> str:
    """``column='text'`` for each reason naming a column (``dtype:price`` -> price), else the
    line's text for a row that did not parse."""
    shown = []
    for code in row["_reasons"].split(";"):
        column = code.partition(":")[2]
        if column in row and column != "":
            shown.append(f"{column}={_text(row[column])!r}")
    if not shown and _text(row.get("_text")):
        shown.append(_text(row["_text"])[:60])
    return ", ".join(dict.fromkeys(shown))


def _text(value) -> str:
    import pandas as pd

    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


@quarantine_app.command("release")
def quarantine_release(
    dataset: str,
    batch: Annotated[str, typer.Option(help="the batch to re-validate")],
    refresh: Annotated[
        bool, typer.Option(help="then rebuild what reads the dataset: curated, cubes, models")
    ] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-check a batch's quarantined rows with the current rules and reference tables; promote
    what passes. With --refresh, the steps downstream of DATASET run next, so released rows reach
    curated tables, cubes and features without promoting the batch again."""
    from workbench.io.locks import target_lock
    from workbench.pipeline import downstream_steps, run_pipeline
    from workbench.zones.quarantine import batch_balance, release_batch

    out = err if as_json else console
    with _session(catalog, workspace, cluster) as (cat, ws):
        with target_lock(ws, "lake", dataset, doing=f"quarantine release {dataset}"):
            result = release_batch(cat, ws, dataset, batch)
        balance = batch_balance(ws, dataset, batch)
        stale = [s.name for s in downstream_steps(cat, dataset)]
        _print_release(out, result, balance, stale, refresh)
        if refresh and stale and result.released:
            with out.status("refreshing") as status:
                run = run_pipeline(cat, ws, stale, upstream=False, on_step=step_lines(out, status))
    if as_json:
        behind = [b.__dict__ for b in result.references_behind]
        refreshed = [s.step for s in run.steps] if refresh and stale and result.released else []
        _print_json(
            {
                **result.__dict__,
                "references_behind": behind,
                "balance": balance,
                "downstream": stale,
                "refreshed": refreshed,
            }
        )


def _print_release(out, result, balance: dict, stale: list[str], refresh: bool) -> None:
    """What the release did, which reference tables are behind, and what is not refreshed yet."""
    out.print(
        f"{result.dataset} batch {result.batch_id}: {result.released:,} rows pass now and are "
        f"in the lake, {result.still_quarantined:,} stay in quarantine. Batch balance: "
        f"{balance['promoted']:,} promoted + {balance['quarantined']:,} quarantined = "
        f"{balance['total']:,}.",
        highlight=False,
    )
    for behind in result.references_behind:
        out.print(
            f"[yellow]reference table behind its source[/] {behind}, then release again.",
            highlight=False,
            soft_wrap=True,
        )
    if result.released and stale and not refresh:
        out.print(
            f"Not yet in {', '.join(stale)}: add --refresh to this command to rebuild them "
            "(the batch is not promoted again).",
            highlight=False,
            soft_wrap=True,
        )


@lake_app.command("history")
def lake_history(
    dataset: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Versions of a lake, curated or quarantine table (read any with version=N)."""
    import pandas as pd

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
        str, typer.Option(help="keep what versions younger than this need (at least 1h)")
    ] = "7d",
    dry_run: Annotated[bool, typer.Option(help="only list the files")] = False,
    force: Annotated[
        bool, typer.Option(help="allow --older-than below 1h (nothing else may be running)")
    ] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete files of old table versions (and uncommitted leftovers) from disk; never files
    younger than the oldest write still running on the workspace."""
    from workbench.io.delta import vacuum
    from workbench.io.locks import running_holders, target_lock
    from workbench.validation.dataset_rules import parse_age
    from workbench.zones.tables import table_path

    with _reported():
        cat, ws = _open(catalog, workspace)
        path = table_path(cat, ws, dataset)
        age = parse_age(older_than).to_pytimedelta()
        with target_lock(ws, path.parent.name, dataset, doing=f"lake vacuum {dataset}") as me:
            others = [h for h in running_holders(ws) if h != me]
            busy = others[0].started if others else None
            removed = vacuum(path, older_than=age, dry_run=dry_run, force=force, busy_since=busy)
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
