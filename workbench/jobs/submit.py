"""Batch submission of pipelines: one folder per job under ``workspace/jobs/<id>/``.

The folder holds ``job.sh`` (the script as submitted), ``job.json`` (what was asked and the
batch system's job id), ``job.out`` and ``job.err`` (the job's output), and, written by the
runner inside the job, ``state.json`` and ``result.json``. The run itself is recorded in the run
store like any other run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dask.utils import parse_bytes

from workbench.cluster.lifetime import parse_walltime
from workbench.cluster.profiles import HpcProfile, resolve_profile
from workbench.cluster.script_safety import check_directive
from workbench.cluster.tls import job_credentials, write_temporary_credentials
from workbench.errors import ClusterError, WorkspaceError
from workbench.io.workspace import Workspace, write_json_atomic
from workbench.jobs.systems import Request, SchedulerState, batch_system
from workbench.runs import RunStore

_FINAL = ("succeeded", "failed", "cancelled", "timeout")


@dataclass(frozen=True)
class JobInfo:
    """A submitted pipeline job, as its folder and the batch system describe it."""

    id: str
    kind: str
    scheduler_id: str | None
    folder: str
    status: str  # written | pending | running | succeeded | failed | cancelled | timeout | unknown
    targets: list[str]
    submitted_at: str
    scheduler_state: str | None = None
    run_id: str | None = None
    error: str | None = None
    exit_code: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in _FINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def submit_job(
    catalog: str | Path,
    ws: Workspace,
    targets: Sequence[str] = (),
    *,
    profile: str = "slurm",
    walltime: str | None = None,
    nodes: int = 1,
    layout: str | None = None,
    directives: Sequence[str] = (),
    dry_run: bool = False,
    **overrides: Any,
) -> JobInfo:
    """Write a job script that runs the pipeline inside its allocation, and submit it.

    ``layout`` is ``local`` (a LocalCluster on one node; the default for one node) or ``srun``
    (SLURM only: scheduler, client and workers as tasks of one ``srun``; the default for more
    nodes). ``overrides`` are profile settings such as ``cores``, ``memory``, ``processes``,
    ``queue``, ``account``.

    Examples
    --------
    >>> job = submit_job("data_catalog.yaml", ws, ["flight_delays"], walltime="01:00:00",
    ...                  cores=8, memory="32GB")      # doctest: +SKIP
    >>> job_status(ws, job.id).status                  # doctest: +SKIP
    'running'
    """
    catalog = Path(catalog).resolve()
    prof = resolve_profile(profile, walltime=walltime, **overrides)
    system = batch_system(prof.kind)
    layout = layout or ("srun" if nodes > 1 else "local")
    if nodes > 1 and layout != "srun":
        raise ClusterError("more than one node needs --layout srun (workers started by srun).")
    if layout == "srun" and prof.kind != "slurm":
        raise ClusterError(f"--layout srun needs SLURM; profile {profile!r} is {prof.kind}.")
    host = str(prof.cluster_kwargs["scheduler_options"].get("host") or "")
    if nodes > 1 and (host.startswith("127.") or host == "localhost"):
        raise ClusterError(
            f"{nodes} nodes need a scheduler the other nodes can reach, but profile {profile!r} "
            f"puts it on {host}: set interface (e.g. ib0) or scheduler-interface in the profile."
        )
    for directive in directives:
        check_directive("--directive", directive, f"workbench job submit --profile {profile}")
    job_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    folder = ws.path("jobs", job_id)
    # The script is checked and written in full before the folder exists: a refused value
    # leaves nothing behind and submits nothing.
    tls = None
    if layout == "srun" and "security" in prof.cluster_kwargs:
        tls = job_credentials(folder, prof.cluster_kwargs["security"])
    script = _script(
        prof, system, folder, catalog, ws, list(targets), nodes, layout, directives, tls
    )
    folder.mkdir(parents=True)
    if tls and prof.cluster_kwargs["security"] is True:
        write_temporary_credentials(tls)
    (folder / "job.sh").write_text(script)
    meta = {
        "id": job_id,
        "kind": prof.kind,
        "profile": profile,
        "layout": layout,
        "nodes": nodes,
        "targets": list(targets),
        "catalog": str(catalog),
        "workspace": str(ws.root),
        "submitted_at": dt.datetime.now(dt.UTC).isoformat(),
        "scheduler_id": None,
    }
    if not dry_run:
        meta["scheduler_id"] = system.submit(str(folder / "job.sh"))
    write_json_atomic(folder / "job.json", meta)
    return job_status(ws, job_id)


def _script(
    prof: HpcProfile,
    system,
    folder: Path,
    catalog: Path,
    ws: Workspace,
    targets: list[str],
    nodes: int,
    layout: str,
    directives: Sequence[str],
    tls: dict | None,
) -> str:
    cores = int(prof.setting("cores") or 1)
    memory = prof.setting("memory")
    processes = int(prof.setting("processes") or cores)
    if cores % processes:
        raise ClusterError(f"cores ({cores}) must be a multiple of processes ({processes}).")
    threads = cores // processes
    per_worker = parse_bytes(memory) // processes if memory else None
    tasks = nodes * processes + 2 if layout == "srun" else 1
    request = Request(
        name=f"workbench-{folder.name}",
        out=str(folder / "job.out"),
        err=str(folder / "job.err"),
        walltime=prof.walltime and system.walltime(parse_walltime(prof.walltime, prof.kind)),
        nodes=nodes,
        tasks=tasks,
        cpus_per_task=threads if layout == "srun" else cores,
        memory=memory,
        queue=prof.setting("queue"),
        account=prof.setting("account") or prof.setting("project"),
        extra=(*(prof.setting("job-extra-directives") or ()), *directives),
    )
    python = prof.setting("python") or sys.executable
    runner = [python, "-m", "workbench.jobs.runner", "--job-dir", str(folder)]
    runner += ["--catalog", str(catalog), "--workspace", str(ws.root), "--kind", prof.kind]
    lines = [
        prof.setting("shebang") or "#!/usr/bin/env bash",
        system.header(request),
        f"# Written by `workbench job submit` ({folder.name}): runs the pipeline in this job.",
        "set -eo pipefail",
        f"cd {shlex.quote(str(catalog.parent))}",
        *(prof.setting("job-script-prologue") or ()),
    ]
    local_dir = prof.setting("local-directory")
    if local_dir:
        lines.append(f"export DASK_TEMPORARY_DIRECTORY={shlex.quote(str(local_dir))}")
    if layout == "srun":
        runner += [
            "--layout",
            "srun",
            "--dask-options",
            json.dumps(_srun_options(prof, threads, per_worker, local_dir, tls)),
        ]
        command = ["srun", "--kill-on-bad-exit=1", *runner, "--", *targets]
    else:
        env = {"N_WORKERS": processes, "THREADS_PER_WORKER": threads}
        if per_worker:
            env["MEMORY_LIMIT"] = per_worker
        lines += [f"export DASK_WORKBENCH__CLUSTER__LOCAL__{k}={v}" for k, v in env.items()]
        command = ["exec", *runner, "--", *targets]
    lines.append(" ".join(shlex.quote(c) if c != "exec" else c for c in command))
    return "\n".join(lines) + "\n"


def _srun_options(
    prof: HpcProfile, threads: int, per_worker: int | None, local_dir, tls: dict | None
) -> dict:
    scheduler = dict(prof.cluster_kwargs["scheduler_options"])
    scheduler.pop("security", None)
    host = scheduler.get("host")
    worker: dict[str, Any] = {"nthreads": threads}
    if per_worker:
        worker["memory_limit"] = per_worker
    if local_dir:
        worker["local_directory"] = str(local_dir)
    if host:
        worker["host"] = host
    elif scheduler.get("interface"):
        worker["interface"] = scheduler["interface"]
    options = {"scheduler": scheduler, "worker": worker, "wait": prof.wait_timeout or 600}
    return options | ({"tls": tls} if tls else {})


def job_folder(ws: Workspace, job: str) -> Path:
    """The folder of ``job``: a workbench job id, or the batch system's job id."""
    jobs = ws.path("jobs")
    if re.fullmatch(r"[\w.-]+", job) and (jobs / job / "job.json").exists():
        return jobs / job
    for meta in sorted(jobs.glob("*/job.json")):
        if json.loads(meta.read_text()).get("scheduler_id") == job:
            return meta.parent
    known = ", ".join(p.parent.name for p in sorted(jobs.glob("*/job.json"))[-5:]) or "none"
    raise WorkspaceError(
        f"no job {job!r} under {jobs}; give a job id as `workbench job status` lists them "
        f"(latest: {known}) or a batch system job id."
    )


def job_status(ws: Workspace, job: str) -> JobInfo:
    """The job's status: the batch system's word joined with what the runner recorded."""
    folder = job_folder(ws, job)
    meta = json.loads((folder / "job.json").read_text())
    result = _read(folder / "result.json")
    sched = None
    if meta["scheduler_id"]:
        sched = batch_system(meta["kind"]).query(meta["scheduler_id"])
    status = _status(meta, result, sched, folder)
    run_id = (result or {}).get("run_id") or _run_of(ws, meta, folder)
    error = None
    if status in ("failed", "cancelled", "timeout", "unknown"):
        error = _first_error(ws, result, run_id, folder, sched)
    return JobInfo(
        id=meta["id"],
        kind=meta["kind"],
        scheduler_id=meta["scheduler_id"],
        folder=str(folder),
        status=status,
        targets=meta["targets"],
        submitted_at=meta["submitted_at"],
        scheduler_state=sched.state if sched else None,
        run_id=run_id,
        error=error,
        exit_code=sched.exit_code if sched else None,
    )


def _status(meta: dict, result: dict | None, sched: SchedulerState | None, folder: Path) -> str:
    if not meta["scheduler_id"]:
        return "written"  # a dry run
    if result:
        # The batch system's word is more precise about why a job was stopped (e.g. timeout).
        if result["status"] == "cancelled" and sched and sched.status in ("timeout", "cancelled"):
            return sched.status
        return result["status"]
    if sched is None:
        if batch_system(meta["kind"]).queryable:
            return "unknown"  # the batch system forgot it and the runner left no result
        return "running" if (folder / "state.json").exists() else "pending"
    if sched.status == "succeeded":
        return "failed"  # it ended without the runner's result: it died outside the pipeline
    return sched.status


def _run_of(ws: Workspace, meta: dict, folder: Path) -> str | None:
    state = _read(folder / "state.json")
    if not state:
        return None
    runs = [r for r in RunStore(ws.runs_db).runs(limit=200) if r["cluster"] == state["label"]]
    return runs[0]["run_id"] if runs else None


def _first_error(ws, result, run_id, folder: Path, sched: SchedulerState | None) -> str | None:
    """Why the job failed, most specific first: the runner's result, the run record, the
    first error in the job's stderr, then the batch system's own state and exit code."""
    if result and result.get("error"):
        return result["error"]
    if run_id:
        run = next((r for r in RunStore(ws.runs_db).runs(limit=200) if r["run_id"] == run_id), None)
        if run and run["error"]:
            return run["error"]
    line = _first_error_line(folder / "job.err")
    if line:
        return line
    if sched:
        return (
            f"the batch system reports {sched.state} "
            f"(exit code {sched.exit_code}, reason {sched.reason})"
        )
    return None


def _first_error_line(path: Path) -> str | None:
    """The last line of the first Python traceback, or the first line naming an error."""
    if not path.exists():
        return None
    lines = path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            for after in lines[i + 1 :]:
                if after and not after.startswith((" ", "Traceback")):
                    return after.strip()
        if re.search(r"\berror\b", line, re.IGNORECASE) and "PMIx" not in line:
            return line.strip()
    return None


def job_logs(ws: Workspace, job: str, tail: int | None = None) -> dict[str, str]:
    """The job's ``job.out`` and ``job.err`` (the last ``tail`` lines of each)."""
    folder = job_folder(ws, job)
    logs = {}
    for name in ("job.out", "job.err"):
        path = folder / name
        text = path.read_text(errors="replace") if path.exists() else ""
        if tail:
            text = "\n".join(text.splitlines()[-tail:])
        logs[name] = text
    return logs


def cancel_job(ws: Workspace, job: str, *, wait: float = 0) -> JobInfo:
    """Ask the batch system to stop the job; with ``wait``, wait up to that many seconds for
    it to end. Steps that committed stay committed; the running step commits nothing."""
    import time

    info = job_status(ws, job)
    if not info.scheduler_id:
        raise ClusterError(f"job {info.id} was never submitted (a dry run); nothing to cancel.")
    if info.finished:
        return info
    batch_system(info.kind).cancel(info.scheduler_id)
    deadline = time.monotonic() + wait
    ended_at = None
    while wait and time.monotonic() < deadline:
        info = job_status(ws, job)
        if info.finished:
            # The batch system can report the end before the runner, stopped by SIGTERM, has
            # written why (the step it was in): give it a few seconds to.
            ended_at = ended_at or time.monotonic()
            if _runner_done(Path(info.folder)) or time.monotonic() - ended_at > RESULT_GRACE:
                break
        time.sleep(0.5)
    return info


# Seconds a cancelled job's runner gets, after the batch system reports the end, to record it.
RESULT_GRACE = 15.0


def _runner_done(folder: Path) -> bool:
    """Whether the runner wrote its result, or never started (so it never will)."""
    return (folder / "result.json").exists() or not (folder / "state.json").exists()


def list_jobs(ws: Workspace, limit: int = 20) -> list[JobInfo]:
    """The latest jobs of the workspace, newest first."""
    folders = sorted(ws.path("jobs").glob("*/job.json"), reverse=True)[:limit]
    return [job_status(ws, p.parent.name) for p in folders]


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
