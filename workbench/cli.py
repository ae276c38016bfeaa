"""``workbench`` command line: parse, call the library, print with rich.

Exit codes: 0 success, 1 data failed its rules past the threshold, 2 usage or catalog error,
3 runtime failure.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from workbench.catalog import columns_of, load_catalog
from workbench.errors import DatasetNotFound, WorkbenchError
from workbench.io.workspace import Workspace

app = typer.Typer(
    help="Dask analytics workbench: data lake, cubes and ML from one catalog.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Read and check the data catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
quarantine_app = typer.Typer(help="Rows that failed validation.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
lake_app = typer.Typer(help="Versioned lake tables.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")
landing_app = typer.Typer(help="Raw files as received.", no_args_is_help=True)
app.add_typer(landing_app, name="landing")
cube_app = typer.Typer(help="OLAP cubes: build, refresh, query, describe.", no_args_is_help=True)
app.add_typer(cube_app, name="cube")
console = Console()
err = Console(stderr=True)

CatalogOpt = Annotated[Path, typer.Option("--catalog", "-c", help="catalog file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
WorkspaceOpt = Annotated[Path | None, typer.Option(help="workspace folder")]
ClusterOpt = Annotated[str | None, typer.Option(help="profile name or scheduler address")]
DEFAULT_CATALOG = Path("data_catalog.yaml")


def _fail(exc: WorkbenchError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


@catalog_app.command("list")
def catalog_list(catalog: CatalogOpt = DEFAULT_CATALOG, as_json: JsonOpt = False) -> None:
    """List datasets, cubes and models."""
    try:
        cat = load_catalog(catalog)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    rows = [
        {"name": n, "kind": "dataset", "zone": d.zone, "description": d.description}
        for n, d in cat.datasets.items()
    ]
    rows += [
        {"name": n, "kind": "cube", "zone": "cubes", "description": f"from {c.source}"}
        for n, c in cat.cubes.items()
    ]
    rows += [
        {"name": n, "kind": "model", "zone": "models", "description": f"from {m.source}"}
        for n, m in cat.models.items()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "zone", "description", title=str(catalog))
    for r in rows:
        table.add_row(*r.values())
    console.print(table)


@catalog_app.command("show")
def catalog_show(
    name: str, catalog: CatalogOpt = DEFAULT_CATALOG, as_json: JsonOpt = False
) -> None:
    """Show one dataset, cube or model as the catalog declares it."""
    try:
        cat = load_catalog(catalog)
        for kind in ("datasets", "cubes", "models"):
            entries = getattr(cat, kind)
            if name in entries:
                data = entries[name].model_dump(mode="json", by_alias=True, exclude_defaults=True)
                if kind == "datasets":
                    data["columns"] = columns_of(cat, name)
                break
        else:
            raise DatasetNotFound(
                f"no dataset, cube or model named {name!r}; known: {', '.join(cat.names())}"
            )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        console.print_json(json.dumps(data))


@catalog_app.command("check")
def catalog_check(catalog: CatalogOpt = DEFAULT_CATALOG) -> None:
    """Check the catalog: syntax, keys, types, references, cycles, columns."""
    try:
        cat = load_catalog(catalog)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(
        f"[green]ok[/] {catalog}: {len(cat.datasets)} datasets, {len(cat.cubes)} cubes, "
        f"{len(cat.models)} models"
    )


def _run_steps(
    catalog: Path,
    workspace: Path | None,
    cluster: str | None,
    targets: list[str],
    out: Console,
    upstream: bool = True,
):
    """Start the cluster, run the steps with a line per step, close the cluster."""
    from workbench import config
    from workbench.cluster import close_client, get_client
    from workbench.pipeline import run_pipeline

    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    cat = load_catalog(catalog)
    ws = Workspace.for_catalog(cat, workspace)
    profile = config.get("cluster.profile", cluster)
    client = get_client(profile)
    out.print(f"Dask dashboard: {client.dashboard_link}")
    try:
        with out.status("starting") as status:

            def on_step(event, step, result):
                if event == "start":
                    status.update(f"{step.name} ...")
                    return
                mark = "[red]✗[/]" if result.status == "failed" else "[green]✓[/]"
                rows = f"{result.rows_out:>10,} rows" if result.rows_out is not None else ""
                out.print(f"{mark} {step.name:<28} {result.seconds:6.1f} s {rows}")

            return run_pipeline(
                cat, ws, targets, cluster=profile, on_step=on_step, upstream=upstream
            )
    finally:
        close_client(client)


@app.command()
def run(
    targets: Annotated[
        list[str] | None, typer.Argument(help="datasets, cubes, models or steps")
    ] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the pipeline (everything, or TARGETS and what they need) on a Dask cluster."""
    try:
        result = _run_steps(catalog, workspace, cluster, targets or [], err if as_json else console)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(result.to_dict())
    else:
        print_run_summary(result)


def _open(catalog: Path, workspace: Path | None):
    cat = load_catalog(catalog)
    return cat, Workspace.for_catalog(cat, workspace)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


@app.command()
def validate(
    dataset: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Land and validate one dataset's source now; exit 1 when it fails its thresholds."""
    from workbench.validation.report import previous_reports, report_dir, rule_table

    failure = None
    try:
        _run_steps(catalog, workspace, cluster, [f"promote:{dataset}"], err)
    except WorkbenchError as exc:
        if exc.exit_code != 1:
            raise _fail(exc) from exc
        failure = exc
    _, ws = _open(catalog, workspace)
    report = previous_reports(ws, dataset)[-1]
    if as_json:
        _print_json(report)
    else:
        table = Table(
            "reason",
            "severity",
            "failing rows",
            "rate",
            title=f"{dataset} batch {report['batch_id']}: {report['rows_read']:,} rows, "
            f"{report['promoted']:,} promoted, {report['quarantined']:,} quarantined",
        )
        for row in rule_table(report).itertuples():
            if row.failed:
                table.add_row(row.reason, row.severity, f"{row.failed:,}", f"{row.rate:.3%}")
        console.print(table)
        for f in report["findings"]:
            mark = "[green]pass[/]" if f["passed"] else "[red]fail[/]"
            console.print(f"{mark} {f['rule']} ({f['severity']}): {f['detail']}")
        console.print(f"Report: {report_dir(ws, dataset) / (report['batch_id'] + '.html')}")
    if failure is not None:
        raise _fail(failure)


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

    try:
        _, ws = _open(catalog, workspace)
        frame = quarantined(ws, dataset, batch).compute()
    except WorkbenchError as exc:
        raise _fail(exc) from exc
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
    from workbench import config
    from workbench.cluster import close_client, get_client
    from workbench.zones.quarantine import batch_balance, release_batch

    try:
        cat, ws = _open(catalog, workspace)
        client = get_client(config.get("cluster.profile", cluster))
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    try:
        result = release_batch(cat, ws, dataset, batch)
        balance = batch_balance(ws, dataset, batch)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    finally:
        close_client(client)
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

    try:
        cat, ws = _open(catalog, workspace)
        path = table_path(cat, ws, dataset)
        versions = history(path)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
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

    try:
        cat, ws = _open(catalog, workspace)
        hours = int(parse_age(older_than).total_seconds() // 3600)
        removed = vacuum(table_path(cat, ws, dataset), older_than_hours=hours, dry_run=dry_run)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
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

    try:
        cat, ws = _open(catalog, workspace)
        collected = gc_landing(cat, ws, older_than=older_than, datasets=dataset)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json([c.__dict__ for c in collected])
        return
    for c in collected:
        console.print(
            f"{c.dataset}: removed {len(c.removed)}, kept {len(c.kept_unpromoted)} "
            f"never promoted, {len(c.kept_young)} younger than the limit"
        )


@cube_app.command("build")
def cube_build(
    name: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the cube from its source as it is now (`workbench run NAME` also refreshes the
    steps upstream)."""
    try:
        result = _run_steps(
            catalog,
            workspace,
            cluster,
            [f"cube:{name}"],
            err if as_json else console,
            upstream=False,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(result.to_dict())
    else:
        print_run_summary(result)


@cube_app.command("refresh")
def cube_refresh(
    name: str,
    since: Annotated[str, typer.Option(help="first date whose cells are recomputed")],
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the cube's time range from SINCE on, and append new periods."""
    from workbench import config
    from workbench.cluster import close_client, get_client
    from workbench.cubes.build import refresh_cube

    try:
        cat, ws = _open(catalog, workspace)
        client = get_client(config.get("cluster.profile", cluster))
        try:
            build = refresh_cube(cat, ws, name, since)
        finally:
            close_client(client)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(build.__dict__)
    else:
        console.print(
            f"{name} v{build.version}: {build.mode}, {build.seconds:.1f} s, cuboids {build.cuboids}"
        )


def _parse_where(items: list[str]) -> dict[str, object]:
    """``level=a`` (one member), ``level=a,b`` (several), ``level=a..b`` (a range)."""
    where = {}
    for item in items:
        level, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(
                f"--where {item!r}: write LEVEL=MEMBER[,MEMBER] or LEVEL=FROM..TO"
            )
        if ".." in value:
            start, _, stop = value.partition("..")
            where[level] = slice(start or None, stop or None)
        else:
            members = value.split(",")
            where[level] = members if len(members) > 1 else members[0]
    return where


@cube_app.command("query")
def cube_query(
    name: str,
    by: Annotated[str, typer.Option(help="levels to group by, comma-separated")] = "",
    where: Annotated[list[str] | None, typer.Option(help="LEVEL=A[,B] or LEVEL=FROM..TO")] = None,
    measure: Annotated[list[str] | None, typer.Option(help="measures (default: all)")] = None,
    having: Annotated[
        str | None, typer.Option(help="filter on measures, e.g. 'flights > 100'")
    ] = None,
    explain: Annotated[bool, typer.Option(help="say which cuboid answers and why")] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Query a cube: group by levels, keep members, pick measures."""
    from workbench.cubes import Query, open_cube

    try:
        cat, ws = _open(catalog, workspace)
        cube = open_cube(cat, ws, name)
        members = [m for part in (measure or []) for m in part.split(",")]
        query = Query(
            tuple(b for b in by.split(",") if b),
            tuple(_parse_where(where or []).items()),
            tuple(members) or None,
            having,
        )
        answer = cube.run(query)
        plan = cube.explain(query)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(
            {
                "cuboid": plan.chosen,
                "rows": json.loads(
                    answer.reset_index().to_json(orient="records", date_format="iso")
                ),
            }
        )
        return
    frame = answer.reset_index()
    table = Table(*map(str, frame.columns), title=f"{name}: {len(frame):,} rows from {plan.chosen}")
    for row in frame.head(200).itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    if explain:
        console.print(str(plan))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


@cube_app.command("info")
def cube_info(
    name: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Levels, measures and cuboids of the current version."""
    from workbench.cubes import open_cube

    try:
        cat, ws = _open(catalog, workspace)
        cube = open_cube(cat, ws, name)
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    info = {
        "cube": name,
        "version": cube.version,
        "levels": cube.levels,
        "measures": cube.stored_measures,
        "derived_measures": cube.derived_measures,
        "cuboids": {c.name: dict(c.dataset.sizes) for c in cube.cuboids},
    }
    if as_json:
        _print_json(info)
        return
    console.print(f"[bold]{name}[/] version {cube.version}")
    levels = Table("level", "dimension", "role")
    for level, (dim, role) in cube.levels.items():
        levels.add_row(level, dim, role)
    console.print(levels)
    cuboids = Table("cuboid", "shape", "cells")
    for c in cube.cuboids:
        cuboids.add_row(
            c.name, " x ".join(f"{k} {v}" for k, v in c.dataset.sizes.items()), f"{c.cells:,}"
        )
    console.print(cuboids)
    console.print("measures: " + ", ".join(cube.stored_measures))
    console.print("derived: " + ", ".join(f"{k} = {v}" for k, v in cube.derived_measures.items()))


def print_run_summary(result) -> None:
    """The demo's closing summary: rows per zone, quarantine reasons, cube, model, paths."""
    steps = {s.step: s for s in result.steps}
    zones = Table(
        "dataset",
        "landed",
        "promoted to lake",
        "quarantined",
        "warned",
        "curated",
        title="Rows per dataset and zone",
    )
    reasons = Table(
        "dataset",
        "reason",
        "action",
        "rows",
        title="Why rows were quarantined (error) or flagged (warn)",
    )
    for name, s in steps.items():
        kind, target = name.split(":", 1)
        if kind == "promote":
            d = s.details
            zones.add_row(
                target,
                f"{s.rows_in:,}",
                f"{s.rows_out:,}",
                f"{d['quarantined']:,}",
                f"{d['warned']:,}",
                "",
            )
            for code, r in d["reasons"].items():
                action = "quarantined" if r["severity"] == "error" else "flagged, kept"
                reasons.add_row(target, code, action, f"{r['rows']:,}")
        elif kind == "curate":
            zones.add_row(target, "", "", "", "", f"{s.rows_out:,}")
    console.print(zones)
    if reasons.row_count:
        console.print(reasons)
    for name, s in steps.items():
        kind, target = name.split(":", 1)
        if kind == "cube":
            shape = " x ".join(f"{k} {v}" for k, v in s.details["shape"].items())
            console.print(
                f"[bold]Cube[/] {target}: {shape} = {s.rows_out:,} cells from "
                f"{s.rows_in:,} rows -> {s.outputs['cube']}"
            )
        if kind == "train":
            m = s.details["metrics"]
            console.print(
                f"[bold]Model[/] {target} v{s.outputs['version']}: ROC AUC {m['roc_auc']:.3f} on "
                f"{m['test_rows']:,} test rows (a constant predictor scores 0.500); accuracy "
                f"{m['accuracy']:.3f} vs {m['baseline_accuracy']:.3f} for the majority class "
                f"-> {s.outputs['model']}"
            )
    console.print(
        f"\nRun {result.run_id} {result.status}; everything is under "
        f"{result.workspace} (run record in runs.sqlite)."
    )
    console.print(
        "Next: [cyan]make serve[/] (dashboard), [cyan]make lab[/] (notebooks), "
        "[cyan].venv/bin/workbench catalog list[/], "
        "[cyan].venv/bin/workbench run flight_delays --json[/]"
    )


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
