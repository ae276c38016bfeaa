"""``workbench`` command line: parse, call the library, print with rich.

Exit codes: 0 success, 1 data failed its rules past the threshold, 2 usage or catalog error,
3 runtime failure.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from workbench.catalog import columns_of, load_catalog
from workbench.errors import DatasetNotFound, WorkbenchError

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
model_app = typer.Typer(
    help="Models: train, tune, list, promote, roll back, score, monitor.", no_args_is_help=True
)
app.add_typer(model_app, name="model")
console = Console()
err = Console(stderr=True)

CatalogOpt = Annotated[Path, typer.Option("--catalog", "-c", help="catalog file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
WorkspaceOpt = Annotated[Path | None, typer.Option(help="workspace folder")]
ClusterOpt = Annotated[str | None, typer.Option(help="profile name or scheduler address")]
WaitOpt = Annotated[
    float | None,
    typer.Option(
        help="seconds to wait when another process writes the same target "
        "(default: workbench.lock-wait, 0 = stop at once naming it)"
    ),
]
# Settings of HPC profiles (slurm, pbs, sge, lsf, htcondor): each overrides the profile's own.
CoresOpt = Annotated[int | None, typer.Option(help="HPC: cores per job", rich_help_panel="HPC")]
MemoryOpt = Annotated[
    str | None, typer.Option(help="HPC: memory per job, e.g. 32GB", rich_help_panel="HPC")
]
ProcessesOpt = Annotated[
    int | None, typer.Option(help="HPC: worker processes per job", rich_help_panel="HPC")
]
JobsOpt = Annotated[int | None, typer.Option(help="HPC: worker jobs", rich_help_panel="HPC")]
HPC_OPTIONS = (
    "cores", "memory", "processes", "jobs", "minimum_jobs", "maximum_jobs", "walltime", "queue",
    "account",
)  # fmt: skip
MinJobsOpt = Annotated[
    int | None, typer.Option("--min-jobs", help="HPC: adaptive minimum", rich_help_panel="HPC")
]
MaxJobsOpt = Annotated[
    int | None,
    typer.Option("--max-jobs", help="HPC: scale adaptively up to this", rich_help_panel="HPC"),
]
WalltimeOpt = Annotated[
    str | None, typer.Option(help="HPC: walltime, e.g. 01:00:00", rich_help_panel="HPC")
]
QueueOpt = Annotated[str | None, typer.Option(help="HPC: queue/partition", rich_help_panel="HPC")]
AccountOpt = Annotated[str | None, typer.Option(help="HPC: account", rich_help_panel="HPC")]
DEFAULT_CATALOG = Path("data_catalog.yaml")


def _fail(exc: WorkbenchError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a WorkbenchError into its message on stderr and its exit code."""
    try:
        yield
    except WorkbenchError as exc:
        raise _fail(exc) from exc


@contextmanager
def _cluster(cluster: str | None, **options) -> Iterator:
    """A client for the profile (argument > config > local), closed afterwards."""
    from workbench import config
    from workbench.cluster import close_client, get_client

    # The shuffle plugin logs a WARNING per merge it plans: noise for a user, not a problem.
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    client = get_client(config.get("cluster.profile", cluster), **options)
    try:
        yield client
    finally:
        close_client(client)


@catalog_app.command("list")
def catalog_list(catalog: CatalogOpt = DEFAULT_CATALOG, as_json: JsonOpt = False) -> None:
    """List datasets, cubes and models."""
    with _reported():
        cat = load_catalog(catalog)
    rows = [
        {"name": n, "kind": "dataset", "zone": d.zone, "description": d.description}
        for n, d in cat.datasets.items()
    ]
    rows += [
        {"name": n, "kind": "cube", "zone": "cubes", "description": f"from {c.source}"}
        for n, c in cat.cubes.items()
    ]
    rows += [
        {"name": n, "kind": "features", "zone": "features", "description": f"from {f.source}"}
        for n, f in cat.features.items()
    ]
    rows += [
        {"name": n, "kind": "model", "zone": "models", "description": f"on {m.feature_set}"}
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
    with _reported():
        cat = load_catalog(catalog)
        for kind in ("datasets", "cubes", "features", "models"):
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
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        console.print_json(json.dumps(data))


@catalog_app.command("check")
def catalog_check(catalog: CatalogOpt = DEFAULT_CATALOG) -> None:
    """Check the catalog: syntax, keys, types, references, cycles, columns, expressions."""
    with _reported():
        cat = load_catalog(catalog)
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
    cluster_options: dict | None = None,
    force=(),
    lock_wait: float | None = None,
):
    """Start the cluster, run the steps with a line per step, close the cluster."""
    from workbench import config
    from workbench.cluster import hpc_profile_names
    from workbench.pipeline import plan_run, run_pipeline

    cat, ws = _open(catalog, workspace)
    options = dict(cluster_options or {})
    if config.get("cluster.profile", cluster) in hpc_profile_names():
        options["default_log_directory"] = str(ws.path("jobs", "workers"))
    # Nothing stale: no cluster to start (a no-op run answers in about a second).
    stale = any(d.run for d in plan_run(cat, ws, targets, upstream=upstream, force=force))
    started = _cluster(cluster, **options) if stale else nullcontext()
    with started as client, out.status("starting") as status:
        if client is not None:
            out.print(f"Dask dashboard: {client.dashboard_link}")
        return run_pipeline(
            cat,
            ws,
            targets,
            cluster=config.get("cluster.profile", cluster),
            on_step=step_lines(out, status),
            upstream=upstream,
            force=force,
            lock_wait=lock_wait,
        )


def step_lines(out: Console, status):
    """A pipeline listener printing one line per finished step and the running one in ``status``."""

    def on_step(event, step, result):
        if event == "start":
            status.update(f"{step.name} ...")
            return
        mark = {"failed": "[red]✗[/]", "reused": "[dim]=[/]"}.get(result.status, "[green]✓[/]")
        rows = f"{result.rows_out:>10,} rows" if result.rows_out is not None else ""
        why = f"  [dim]{result.reason}[/]" if result.reason else ""
        out.print(f"{mark} {step.name:<28} {result.seconds:6.1f} s {rows:>15}{why}")

    return on_step


@app.command()
def run(
    targets: Annotated[
        list[str] | None, typer.Argument(help="datasets, cubes, models or steps")
    ] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
    cores: CoresOpt = None,
    memory: MemoryOpt = None,
    processes: ProcessesOpt = None,
    jobs: JobsOpt = None,
    minimum_jobs: MinJobsOpt = None,
    maximum_jobs: MaxJobsOpt = None,
    walltime: WalltimeOpt = None,
    queue: QueueOpt = None,
    account: AccountOpt = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="show what would run and why; run nothing")
    ] = False,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="redo this step even if up to date (repeat; 'all')"),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="then `lake verify` what was promoted; 1 if differs")
    ] = False,
) -> None:
    """Run the pipeline (everything, or TARGETS and what they need) on a Dask cluster.

    Steps whose catalog entry, inputs and workbench version are those of their last successful
    run are reused, not run again; `--plan` shows what would run and why.
    With an HPC profile (`--cluster slurm`) the client runs here and the workers are batch jobs.
    """
    hpc_options = {k: v for k, v in locals().items() if k in HPC_OPTIONS}
    forced = True if force and "all" in force else (force or [])
    if plan:
        with _reported():
            _print_plan(catalog, workspace, targets or [], forced, as_json)
        return
    with _reported():
        result = _run_steps(
            catalog,
            workspace,
            cluster,
            targets or [],
            err if as_json else console,
            cluster_options=hpc_options,
            force=forced,
            lock_wait=wait,
        )
    if as_json:
        _print_json(result.to_dict())
    else:
        print_run_summary(result, catalog)
    if verify:
        from workbench.cli.zones import verify_promoted

        if not verify_promoted(catalog, workspace, cluster, result, err if as_json else console):
            raise typer.Exit(1)


def _print_plan(catalog: Path, workspace: Path | None, targets, force, as_json: bool) -> None:
    from workbench.pipeline import plan_run

    cat, ws = _open(catalog, workspace)
    decisions = plan_run(cat, ws, targets, force=force)
    if as_json:
        _print_json([d.__dict__ for d in decisions])
        return
    table = Table("step", "action", "why", title="Plan (nothing has run)")
    for d in decisions:
        table.add_row(d.step, "[yellow]run[/]" if d.run else "[green]reuse[/]", d.reason)
    console.print(table)


def _open(catalog: Path, workspace: Path | None):
    from workbench.io.workspace import Workspace

    cat = load_catalog(catalog)
    return cat, Workspace.for_catalog(cat, workspace)


@contextmanager
def _session(catalog: Path, workspace: Path | None, cluster: str | None) -> Iterator[tuple]:
    """What most commands need: errors reported, a cluster client, the catalog and workspace."""
    with _reported(), _cluster(cluster):
        yield _open(catalog, workspace)


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
        step = f"promote:{dataset}"  # asked for by name: validated again even when up to date
        _run_steps(catalog, workspace, cluster, [step], err, force=[step])
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


def print_run_summary(result, catalog: Path = DEFAULT_CATALOG) -> None:
    """The demo's closing summary: rows per zone, quarantine reasons, cube, model, paths."""
    steps = {s.step: s for s in result.steps}
    per_zone = Table(
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
            per_zone.add_row(
                target,
                f"{s.rows_in:,}",
                f"{s.rows_out:,}",
                f"{d['quarantined']:,}",
                f"{d['warned']:,}",
                "",
            )
            for code, r in d["reasons"].items():
                action = "quarantined" if r["severity"] == "error" else "flagged, kept"
                if r.get("quarantined_too"):
                    action += f" ({r['quarantined_too']:,} quarantined rows failed it too)"
                reasons.add_row(target, code, action, f"{r['rows']:,}")
        elif kind == "curate":
            per_zone.add_row(target, "", "", "", "", f"{s.rows_out:,}")
    console.print(per_zone)
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
        if kind == "train" and "metrics" in s.details:
            console.print(
                f"[bold]Model[/] {target} v{s.outputs['version']}: "
                f"{_test_scores(s.details['metrics'])} -> {s.outputs['model']}"
            )
            promotion = s.details.get("promotion")
            if promotion:
                mark = "[green]production[/]" if promotion["promoted"] else "[yellow]candidate[/]"
                console.print(f"  {mark}: {promotion['reason']}", highlight=False)
    console.print(
        f"\nRun {result.run_id} {result.status}; everything is under "
        f"{result.workspace} (run record in runs.sqlite)."
    )
    console.print(_next_commands(result, catalog), highlight=False, soft_wrap=True)


def _next_commands(result, catalog: Path) -> str:
    """What to try next, with this catalog's own names (never the demo's on a user's catalog)."""
    given = "" if catalog == DEFAULT_CATALOG else f" -c {catalog}"
    make_serve = "make serve" + (f" CATALOG={catalog}" if given else "")
    built = [s.step.split(":", 1)[1] for s in result.steps if s.step.startswith("cube:")]
    tips = [
        f"[cyan]{make_serve}[/] (dashboard)",
        "[cyan]make lab[/] (notebooks)",
        f"[cyan].venv/bin/workbench catalog list{given}[/]",
    ]
    if built:
        tips.append(f"[cyan].venv/bin/workbench cube info {built[0]}{given}[/]")
    return "Next: " + ", ".join(tips)


def _test_scores(m: dict) -> str:
    """A model's test metrics beside its baseline's; a regressor has no ROC AUC."""
    if "roc_auc" in m:
        return (
            f"ROC AUC {m['roc_auc']:.3f} on {m['test_rows']:,} test rows (a constant predictor "
            f"scores 0.500); accuracy {m['accuracy']:.3f} vs {m['baseline_accuracy']:.3f} for "
            "the majority class"
        )
    return (
        f"RMSE {m['rmse']:.3g} (predicting the training mean: {m['baseline_rmse']:.3g}), "
        f"MAE {m['mae']:.3g}, R² {m['r2']:.3f} on {m['test_rows']:,} test rows"
    )


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


# Sub-command groups live in their own modules; importing them registers their commands.
from workbench.cli import cubes, hpc, lineage, models, serve, signing, zones  # noqa: E402, F401
