"""`workbench cluster` (profiles, job scripts) and `workbench job` (batch pipeline jobs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from workbench.cli import (
    DEFAULT_CATALOG,
    HPC_OPTIONS,
    AccountOpt,
    CatalogOpt,
    CoresOpt,
    JobsOpt,
    JsonOpt,
    MaxJobsOpt,
    MemoryOpt,
    MinJobsOpt,
    ProcessesOpt,
    QueueOpt,
    WalltimeOpt,
    WorkspaceOpt,
    _open,
    _print_json,
    _reported,
    app,
    console,
)

cluster_app = typer.Typer(
    help="Cluster profiles: list them, show a job script.", no_args_is_help=True
)
app.add_typer(cluster_app, name="cluster")
job_app = typer.Typer(help="Batch jobs that run the pipeline.", no_args_is_help=True)
app.add_typer(job_app, name="job")

ProfileOpt = Annotated[str, typer.Option(help="HPC profile (slurm, pbs, sge, lsf or yours)")]
JobArg = Annotated[str, typer.Argument(help="job id (see `workbench job status`) or batch job id")]


@cluster_app.command("list")
def cluster_list(as_json: JsonOpt = False) -> None:
    """List cluster profiles: local and the HPC profiles of the config."""
    from workbench import config
    from workbench.cluster import hpc_profile_names

    profiles = config.get("cluster.profiles") or {}
    rows = [{"profile": "local", "kind": "LocalCluster on this machine"}]
    rows += [
        {"profile": n, "kind": (profiles[n] or {}).get("kind", n)} for n in hpc_profile_names()
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("profile", "kind", title=f"default: {config.get('cluster.profile')}")
    for r in rows:
        table.add_row(r["profile"], r["kind"])
    console.print(table)


@cluster_app.command("info")
def cluster_info(
    profile: str,
    cores: CoresOpt = None,
    memory: MemoryOpt = None,
    processes: ProcessesOpt = None,
    jobs: JobsOpt = None,
    minimum_jobs: MinJobsOpt = None,
    maximum_jobs: MaxJobsOpt = None,
    walltime: WalltimeOpt = None,
    queue: QueueOpt = None,
    account: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a profile's settings and the job script one worker job would be submitted with."""
    from workbench.cluster import job_script, resolve_profile

    options = {k: v for k, v in locals().items() if k in HPC_OPTIONS}
    with _reported():
        described = resolve_profile(profile, **options).describe()
        script = job_script(profile, **options)
    if as_json:
        _print_json({**described, "job_script": script})
        return
    table = Table("setting", "value", title=f"profile {profile}")
    for key, value in described.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
    console.print(
        "[bold]Job script[/] (one worker job; the scheduler address is filled in at start):"
    )
    print(script)


@job_app.command("submit")
def job_submit(
    targets: Annotated[list[str] | None, typer.Argument(help="what to run (default: all)")] = None,
    profile: ProfileOpt = "slurm",
    walltime: WalltimeOpt = None,
    nodes: Annotated[int, typer.Option(help="nodes (more than 1: workers started by srun)")] = 1,
    cores: CoresOpt = None,
    memory: MemoryOpt = None,
    processes: ProcessesOpt = None,
    queue: QueueOpt = None,
    account: AccountOpt = None,
    directive: Annotated[
        list[str] | None, typer.Option(help="extra batch directive, e.g. --constraint=haswell")
    ] = None,
    layout: Annotated[
        str | None, typer.Option(help="local (one node) or srun (scheduler file, SLURM)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="write the job script, do not submit")] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a job script under workspace/jobs/<id>/ that runs the pipeline, and submit it."""
    from workbench.jobs import submit_job

    with _reported():
        _, ws = _open(catalog, workspace)
        job = submit_job(
            catalog,
            ws,
            targets or [],
            profile=profile,
            walltime=walltime,
            nodes=nodes,
            layout=layout,
            directives=directive or (),
            dry_run=dry_run,
            cores=cores,
            memory=memory,
            processes=processes,
            queue=queue,
            account=account,
        )
    if as_json:
        _print_json(job.to_dict())
        return
    script = Path(job.folder) / "job.sh"
    if dry_run:
        console.print(f"Job script written (not submitted): {script}")
        print(script.read_text())
        return
    console.print(
        f"Submitted job [bold]{job.id}[/] ({job.kind} job {job.scheduler_id}); "
        f"folder {job.folder}\nFollow it: workbench job status {job.id}; "
        f"workbench job logs {job.id}"
    )


@job_app.command("status")
def job_status_cmd(
    job: Annotated[str | None, typer.Argument(help="job id; none: the latest jobs")] = None,
    wait: Annotated[float, typer.Option(help="wait up to this many seconds for the end")] = 0,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Status of one job (exit 3 when it failed, with the first error of its run) or of the
    latest jobs."""
    from workbench.jobs import job_status, list_jobs

    with _reported():
        _, ws = _open(catalog, workspace)
        if job is None:
            jobs = list_jobs(ws)
        else:
            info = job_status(ws, job)
            deadline = time.monotonic() + wait
            while not info.finished and time.monotonic() < deadline:
                time.sleep(1)
                info = job_status(ws, job)
            jobs = [info]
    if as_json:
        _print_json([j.to_dict() for j in jobs] if job is None else jobs[0].to_dict())
    else:
        table = Table("job", "batch id", "status", "targets", "run", "error", title="Jobs")
        for j in jobs:
            colour = {"succeeded": "green", "failed": "red", "running": "cyan"}.get(j.status, "")
            table.add_row(
                j.id,
                f"{j.kind} {j.scheduler_id or '-'}",
                f"[{colour}]{j.status}[/]" if colour else j.status,
                " ".join(j.targets) or "all",
                j.run_id or "",
                j.error or "",
            )
        console.print(table)
    if job is not None and jobs[0].status in ("failed", "cancelled", "timeout"):
        raise typer.Exit(3)


@job_app.command("logs")
def job_logs_cmd(
    job: JobArg,
    tail: Annotated[int | None, typer.Option(help="only the last N lines of each")] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
) -> None:
    """Print the job's output (job.out) and errors (job.err)."""
    from workbench.jobs import job_logs

    with _reported():
        _, ws = _open(catalog, workspace)
        logs = job_logs(ws, job, tail=tail)
    for name, text in logs.items():
        console.rule(name)
        print(text)


@job_app.command("cancel")
def job_cancel(
    job: JobArg,
    wait: Annotated[float, typer.Option(help="wait up to this many seconds for the end")] = 60,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a job. Steps it finished stay committed; the step it was running commits nothing."""
    from workbench.jobs import cancel_job

    with _reported():
        _, ws = _open(catalog, workspace)
        info = cancel_job(ws, job, wait=wait)
    if as_json:
        _print_json(info.to_dict())
    else:
        console.print(f"job {info.id}: {info.status}" + (f" ({info.error})" if info.error else ""))
