"""What runs inside a batch job written by ``workbench job submit``.

``python -m workbench.jobs.runner --job-dir DIR --catalog FILE --workspace DIR [TARGET ...]``

- layout ``local``: a LocalCluster sized by the job script's environment, on the one node;
- layout ``srun``: started by ``srun`` on every task; dask-jobqueue's ``SLURMRunner`` makes
  task 0 the scheduler (it writes a scheduler file in the job folder), task 1 this client and
  the others workers.

The runner writes ``state.json`` when it starts and ``result.json`` when it ends (succeeded,
failed with the first error of the run, or cancelled by the batch system), and the run itself is
recorded in the run store, labelled with the batch system's job id.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from workbench.io.workspace import write_json_atomic


class JobInterrupted(BaseException):  # noqa: N818 - a signal, not an error of the run
    """The batch system asked the job to stop (SIGTERM: scancel, walltime, preemption)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _say(text: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {text}", flush=True)


def run_in_job(
    job_dir: Path, catalog: Path, workspace: Path, targets: list[str], label: str
) -> int:
    """Run the pipeline on the current Dask client; record the outcome in ``job_dir``."""
    from workbench.catalog import load_catalog
    from workbench.errors import WorkbenchError
    from workbench.io.workspace import Workspace
    from workbench.pipeline import run_pipeline
    from workbench.runs import RunStore

    current: dict[str, str] = {}

    def on_step(event, step, result) -> None:
        if event == "start":
            current["step"] = step.name
            _say(f"start {step.name}")
        else:
            rows = f", {result.rows_out:,} rows" if result.rows_out is not None else ""
            _say(f"{result.status} {step.name} in {result.seconds:.1f} s{rows}")

    def interrupted(signum, frame) -> None:
        raise JobInterrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
    write_json_atomic(
        job_dir / "state.json",
        {"status": "running", "started_at": _now(), "host": socket.gethostname(), "label": label},
    )
    cat = load_catalog(catalog)
    ws = Workspace.for_catalog(cat, workspace)
    outcome: dict = {"label": label, "targets": targets}
    try:
        result = run_pipeline(cat, ws, targets, cluster=label, on_step=on_step)
        outcome |= {"status": "succeeded", "run_id": result.run_id, "exit_code": 0}
        outcome["steps"] = [
            {"step": s.step, "status": s.status, "seconds": s.seconds, "rows_out": s.rows_out}
            for s in result.steps
        ]
    except JobInterrupted as stop:
        store = RunStore(ws.runs_db)
        error = f"stopped by the batch system ({stop}) during {current.get('step', 'start-up')}"
        run_id = _running_run(store, label)
        if run_id:
            store.finish_run(run_id, "cancelled", error)
        outcome |= {"status": "cancelled", "run_id": run_id, "error": error, "exit_code": 143}
    except WorkbenchError as exc:
        outcome |= {"status": "failed", "run_id": getattr(exc, "run_id", None)}
        outcome |= {"error": str(exc), "step": current.get("step"), "exit_code": exc.exit_code}
    except Exception as exc:  # anything else still gets a result file naming it
        outcome |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        outcome |= {"step": current.get("step"), "exit_code": 3}
    outcome["finished_at"] = _now()
    write_json_atomic(job_dir / "result.json", outcome)
    _say(f"{outcome['status']}" + (f": {outcome['error']}" if outcome.get("error") else ""))
    return int(outcome["exit_code"])


def _running_run(store, label: str) -> str | None:
    runs = [r for r in store.runs(limit=200) if r["cluster"] == label]
    return runs[0]["run_id"] if runs else None


def _local(args: argparse.Namespace, run: Callable[[], int]) -> int:
    from workbench.cluster import close_client, get_client

    client = get_client("local")
    _say(
        f"local cluster: {len(client.scheduler_info()['workers'])} workers, {client.dashboard_link}"
    )
    try:
        return run()
    finally:
        close_client(client)


def _srun(args: argparse.Namespace, run: Callable[[], int]) -> int:
    from distributed import Client

    options = json.loads(args.dask_options or "{}")
    scheduler, worker = options.get("scheduler", {}), options.get("worker", {})
    security = None
    if options.get("tls"):
        from workbench.cluster.tls import job_security

        security = job_security(options["tls"])
        scheduler |= {"security": security, "protocol": "tls"}
        worker |= {"security": security, "protocol": "tls"}
    with (
        _secure_runner()(
            security,
            scheduler_file=str(Path(args.job_dir) / "scheduler-{job_id}.json"),
            scheduler_options=scheduler,
            worker_options=worker,
        ) as runner,
        Client(runner, security=security) as client,
    ):
        # Only the client task gets here; the scheduler and worker tasks run inside the runner.
        client.wait_for_workers(runner.n_workers, timeout=options.get("wait", 600))
        _say(f"srun cluster: {runner.n_workers} workers, {client.dashboard_link}")
        return run()


def _secure_runner():
    """dask-jobqueue's SLURMRunner, whose client task also speaks TLS to the scheduler."""
    from dask_jobqueue.slurm import SLURMRunner
    from distributed.core import rpc

    class SecureSLURMRunner(SLURMRunner):
        def __init__(self, security, *args, **kwargs):
            self.security = security  # before super(): it starts the task's role right away
            super().__init__(*args, **kwargs)

        async def before_client_start(self) -> None:
            # SLURMRunner opens its rpc (used to stop the scheduler at the end) without TLS.
            if self.security is not None:
                args = self.security.get_connection_args("client")
                self.scheduler_comm = rpc(self.scheduler_address, connection_args=args)

    return SecureSLURMRunner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.jobs.runner")
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--layout", choices=("local", "srun"), default="local")
    parser.add_argument("--kind", default="slurm")
    parser.add_argument("--dask-options", help="JSON: scheduler and worker options (srun)")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args(argv)
    job_dir = Path(args.job_dir)
    from workbench.jobs.systems import batch_system

    sched_id = os.environ.get(batch_system(args.kind).env_job_id, "?")
    label = f"{args.kind} job {sched_id} ({job_dir.name})"

    def run() -> int:
        return run_in_job(
            job_dir, Path(args.catalog), Path(args.workspace), list(args.targets), label
        )

    layout = _srun if args.layout == "srun" else _local
    return layout(args, run)


if __name__ == "__main__":
    sys.exit(main())
