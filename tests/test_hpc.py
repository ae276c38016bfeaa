"""HPC profiles and batch jobs: settings checked against dask-jobqueue's own scripts, and the
pipeline run on a real single-node SLURM (ci/slurm/start.sh) with workers as jobs, as a batch
job, cancelled, and with a worker job killed mid-run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import dask.config
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.cluster import job_script, resolve_profile
from workbench.cluster.lifetime import parse_walltime
from workbench.cluster.profiles import CLUSTER_CLASSES
from workbench.jobs import job_status, submit_job
from workbench.testing import orders_catalog, random_orders, write_customers

from .conftest import DEMO_CATALOG, IN_CI

# Addresses and ports differ between two clusters; everything else in a script must not.
_ADDRESS = re.compile(r"(tcp|tls)://127\.0\.0\.1:\d+")


def _same_script(text: str) -> str:
    return _ADDRESS.sub(r"\1://SCHEDULER", text)


def _slurm_idle() -> bool:
    if not shutil.which("sinfo"):
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return done.returncode == 0 and any(
        s.strip() in ("idle", "mixed", "allocated") for s in done.stdout.splitlines()
    )


@pytest.fixture(scope="module")
def slurm():
    if not _slurm_idle():
        message = "no SLURM node is up: start one with `sudo bash ci/slurm/start.sh`"
        if IN_CI:
            pytest.fail(message + " (.ci/run does this)")
        pytest.skip(message)
    before = _checkout_files()
    yield
    # sbatch writes slurm-<id>.out into its working directory when a script names no output:
    # no job of these tests may leave that (or anything else) in the checkout.
    new = _checkout_files() - before
    assert not new, f"the SLURM tests left files in the checkout: {sorted(new)}"


def _checkout_files() -> set[str]:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
        capture_output=True, text=True, cwd=root, check=True,
    )  # fmt: skip
    caches = ("__pycache__", ".ruff_cache", ".pytest_cache")  # written by the tools, not jobs
    return {
        line[3:]
        for line in done.stdout.splitlines()
        if line[:2] in ("??", "!!") and not any(c in line for c in caches)
    }


def _cli(*args: str) -> SimpleNamespace:
    """``workbench ARGS`` in this process (fast); ``run --cluster slurm`` gets its own process."""
    result = CliRunner().invoke(app, list(args))
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def _cli_process(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from workbench.cli import app; app()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _orders(tmp_path: Path, n: int = 400) -> tuple[Path, wb.Catalog, wb.Workspace]:
    data = tmp_path / "data"
    write_customers(data)
    random_orders(7, n).to_csv(data / "orders_1.csv", index=False)
    path = orders_catalog(tmp_path, data)
    catalog = wb.load_catalog(path)
    return path, catalog, wb.Workspace.for_catalog(catalog)


# -- profiles: settings and precedence -------------------------------------------------------


def test_settings_come_from_override_then_profile_then_jobqueue_config():
    with dask.config.set(
        {
            "jobqueue.slurm.cores": 4,
            "jobqueue.slurm.memory": "8GB",
            "jobqueue.slurm.queue": "from-jobqueue",
            "workbench.cluster.profiles.gpu": {"kind": "slurm", "queue": "gpu", "jobs": 3},
        }
    ):
        gpu = resolve_profile("gpu")
        assert (gpu.kind, gpu.jobs, gpu.cluster_kwargs["queue"]) == ("slurm", 3, "gpu")
        # cores and memory are left to dask-jobqueue, which reads its own config
        assert "cores" not in gpu.cluster_kwargs
        assert "#SBATCH --cpus-per-task=4" in job_script("gpu")
        assert "#SBATCH -p from-jobqueue" in job_script("slurm")
        cli = resolve_profile("gpu", cores=16, jobs=5, queue=None)
        assert (cli.cluster_kwargs["cores"], cli.jobs, cli.cluster_kwargs["queue"]) == (
            16,
            5,
            "gpu",
        )
        assert "gpu" in wb.cluster.hpc_profile_names()


def test_unknown_setting_lists_the_valid_ones_and_renamed_keys_are_named():
    bad = {"workbench.cluster.profiles.bad": {"kind": "pbs", "cpus": 4}}
    with dask.config.set(bad), pytest.raises(wb.ProfileError, match="'cpus'.*cores.*walltime"):
        resolve_profile("bad")
    with pytest.raises(wb.ProfileError, match="'job-extra' was renamed 'job-extra-directives'"):
        resolve_profile("slurm", job_extra=["--exclusive"])
    with pytest.raises(wb.ProfileError, match="no HPC profile 'nope'.*slurm"):
        resolve_profile("nope")
    with pytest.raises(wb.ProfileError, match="use one of local.*slurm"):
        wb.get_client("nope")


def test_missing_cores_and_local_with_hpc_options_are_usage_errors(tmp_path):
    done = _cli("cluster", "info", "sge")
    assert done.returncode == 2
    assert "needs cores and memory per job: pass --cores 8 --memory 32GB" in done.stderr
    done = _cli(
        "run", "airlines", "--catalog", str(DEMO_CATALOG), "--workspace", str(tmp_path),
        "--cluster", "local", "--jobs", "2",
    )  # fmt: skip
    assert done.returncode == 2 and "apply to HPC profiles" in done.stderr


@pytest.mark.parametrize(
    ("text", "kind", "seconds"),
    [
        ("01:00:00", "slurm", 3600),
        ("2-06:00:00", "slurm", 194400),
        ("1-12", "slurm", 129600),
        ("45", "slurm", 2700),
        ("30:00", "slurm", 1800),
        ("00:30", "lsf", 1800),
        ("12:00:00", "pbs", 43200),
        ("90", "pbs", 90),
    ],
)
def test_walltimes_of_each_batch_system(text, kind, seconds):
    assert parse_walltime(text, kind) == seconds


@pytest.mark.parametrize("walltime", ["00:05:00", "00:30:00", "01:00:00", "12:00:00", "3-00:00:00"])
def test_auto_lifetime_ends_every_worker_before_the_walltime(walltime):
    p = resolve_profile("slurm", cores=1, memory="1GB", walltime=walltime)
    wall = parse_walltime(walltime, "slurm")
    # the latest a worker can retire is lifetime + stagger; a margin must remain to hand data on
    assert p.lifetime + p.lifetime_stagger <= wall - 60
    assert p.lifetime > wall / 2 and p.lifetime_stagger > 0
    args = p.cluster_kwargs["worker_extra_args"]
    assert args[args.index("--lifetime") + 1] == f"{int(p.lifetime)}s"
    assert args[args.index("--lifetime-stagger") + 1] == f"{int(p.lifetime_stagger)}s"
    off = resolve_profile("slurm", cores=1, memory="1GB", walltime=walltime, lifetime=False)
    assert "--lifetime" not in off.cluster_kwargs["worker_extra_args"]


def test_scheduler_on_loopback_unless_an_interface_is_configured():
    p = resolve_profile("slurm", cores=1, memory="1GB")
    assert p.cluster_kwargs["scheduler_options"]["host"] == "127.0.0.1"
    assert p.cluster_kwargs["scheduler_options"]["dashboard_address"] == "127.0.0.1:0"
    assert p.cluster_kwargs["worker_extra_args"][:2] == ["--host", "127.0.0.1"]
    with dask.config.set({"jobqueue.slurm.interface": "ib0"}):
        site = resolve_profile("slurm", cores=1, memory="1GB")
    # dask-jobqueue then puts scheduler and workers on ib0; no loopback forced on either
    assert "host" not in site.cluster_kwargs["scheduler_options"]
    assert "--host" not in site.cluster_kwargs["worker_extra_args"]
    login = resolve_profile("slurm", cores=1, memory="1GB", scheduler_interface="eth0")
    assert login.cluster_kwargs["scheduler_options"]["interface"] == "eth0"


# -- job scripts against dask-jobqueue's own -------------------------------------------------

_COMMON = {"cores": 8, "memory": "32GB", "processes": 2, "walltime": "02:00:00"}


@pytest.mark.parametrize(
    ("kind", "settings", "expected_lines"),
    [
        (
            "pbs",
            {**_COMMON, "queue": "normal", "account": "proj42",
             "job_extra_directives": ["-m abe"], "local_directory": "$TMPDIR"},
            ["#PBS -q normal", "#PBS -A proj42", "#PBS -l select=1:ncpus=8:mem=30GB",
             "#PBS -l walltime=02:00:00", "#PBS -m abe", "--local-directory $TMPDIR"],
        ),
        (
            "sge",
            {**_COMMON, "queue": "all.q", "resource_spec": "h_vmem=16G",
             "job_extra_directives": ["-pe smp 8"]},
            ["#$ -q all.q", "#$ -l h_vmem=16G", "#$ -l h_rt=02:00:00", "#$ -pe smp 8", "#$ -cwd"],
        ),
        (
            "lsf",
            {**_COMMON, "walltime": "02:00", "queue": "short", "project": "proj42",
             "lsf_units": "mb", "job_extra_directives": ['-R "select[avx2]"']},
            ["#BSUB -q short", '#BSUB -P "proj42"', "#BSUB -n 8", "#BSUB -M 32000",
             "#BSUB -W 02:00", '#BSUB -R "select[avx2]"'],
        ),
        (
            "htcondor",
            {"cores": 8, "memory": "32GB", "processes": 2, "disk": "10GB",
             "job_extra_directives": {"+ProjectName": '"proj42"'}},
            ["RequestCpus = MY.DaskWorkerCores", "MY.DaskWorkerCores = 8",
             "MY.DaskWorkerMemory = 32000000000", "MY.DaskWorkerDisk = 10000000000",
             '+ProjectName = "proj42"'],
        ),
    ],
)  # fmt: skip
def test_job_script_equals_dask_jobqueue_for_the_same_settings(kind, settings, expected_lines):
    import dask_jobqueue

    name = f"site-{kind}"
    profile = {"kind": kind, **{k.replace("_", "-"): v for k, v in settings.items()}}
    with dask.config.set({f"workbench.cluster.profiles.{name}": profile}):
        ours = job_script(name, lifetime="50m", lifetime_stagger="4m")
    # The same cluster written by hand the way dask-jobqueue's documentation shows it.
    cls = getattr(dask_jobqueue, CLUSTER_CLASSES[kind])
    lifetime = ["--lifetime", "3000s", "--lifetime-stagger", "240s"]
    loopback = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    theirs = cls(
        **settings,
        worker_extra_args=loopback + lifetime,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    )
    try:
        expected = theirs.job_script()
    finally:
        theirs.close()
    assert _same_script(ours) == _same_script(expected)
    for line in expected_lines:
        assert line in ours, f"{line!r} missing from\n{ours}"
    assert "--nworkers 2" in ours and "--nthreads 4" in ours
    assert "--lifetime 3000s --lifetime-stagger 240s" in ours


def test_tls_files_are_passed_to_scheduler_and_workers(tmp_path):
    tls = _certificates(tmp_path)
    ours = job_script("slurm", cores=1, memory="1GB", security=tls)
    assert "tls://127.0.0.1:" in ours
    for flag, file in [("--tls-ca-file", "ca.pem"), ("--tls-cert", "node.pem")]:
        assert f"{flag} {tmp_path / file}" in ours
    with pytest.raises(wb.ProfileError, match="ca-file, cert and key"):
        resolve_profile("slurm", security={"cert": "x.pem"})


def _certificates(folder: Path) -> dict[str, str]:
    """A CA and one certificate for 127.0.0.1 signed by it (openssl, as a site would)."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "node.key", "-out", "node.csr")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "node.pem")  # fmt: skip
    return {
        "ca-file": str(folder / "ca.pem"),
        "cert": str(folder / "node.pem"),
        "key": str(folder / "node.key"),
    }


# -- batch job scripts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("slurm", ["#SBATCH -t 01:00:00", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=15G",
                   "#SBATCH -p short", "#SBATCH -A proj42", "#SBATCH --constraint=avx2"]),
        ("pbs", ["#PBS -l walltime=01:00:00", "#PBS -l select=1:ncpus=4:mem=15GB",
                 "#PBS -q short", "#PBS -A proj42", "#PBS --constraint=avx2"]),
        ("sge", ["#$ -l h_rt=01:00:00", "#$ -pe smp 4", "#$ -q short", "#$ -P proj42"]),
        ("lsf", ["#BSUB -W 01:00", "#BSUB -n 4", "#BSUB -M 16000", "#BSUB -q short",
                 '#BSUB -P "proj42"']),
    ],
)  # fmt: skip
def test_dry_run_writes_the_batch_script_of_each_system(tmp_path, profile, expected):
    path, _, ws = _orders(tmp_path)
    job = submit_job(
        path, ws, ["orders"], profile=profile, walltime="01:00:00", cores=4, memory="16GB",
        queue="short", account="proj42", directives=["--constraint=avx2"], dry_run=True,
    )  # fmt: skip
    assert job.status == "written" and job.scheduler_id is None
    script = (Path(job.folder) / "job.sh").read_text()
    for line in expected:
        assert line in script, f"{line!r} missing from\n{script}"
    assert script.startswith("#!/usr/bin/env bash\n")
    assert f"-m workbench.jobs.runner --job-dir {job.folder}" in script
    assert script.rstrip().endswith("-- orders")
    assert "DASK_WORKBENCH__CLUSTER__LOCAL__N_WORKERS=4" in script
    if profile != "slurm":
        with pytest.raises(wb.ClusterError, match="srun needs SLURM"):
            submit_job(path, ws, profile=profile, nodes=2, cores=4, memory="16GB", dry_run=True)


def test_several_nodes_need_a_scheduler_other_nodes_can_reach(tmp_path):
    path, _, ws = _orders(tmp_path)
    with pytest.raises(wb.ClusterError, match="interface"):
        submit_job(path, ws, nodes=2, cores=4, memory="16GB", dry_run=True)
    job = submit_job(
        path, ws, nodes=2, cores=4, processes=2, memory="16GB", dry_run=True,
        scheduler_interface="ib0",
    )  # fmt: skip
    script = (Path(job.folder) / "job.sh").read_text()
    assert "#SBATCH -N 2" in script and "#SBATCH -n 6" in script  # 2 x 2 workers + 2
    assert "#SBATCH --cpus-per-task=2" in script
    assert "\nsrun --kill-on-bad-exit=1 " in script and "--layout srun" in script


# -- on a real SLURM -------------------------------------------------------------------------


def _wait_job(ws: wb.Workspace, job_id: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    info = job_status(ws, job_id)
    while not info.finished and time.monotonic() < deadline:
        time.sleep(0.5)
        info = job_status(ws, job_id)
    return info


def _lake(catalog, ws, name) -> pd.DataFrame:
    df = wb.read_dataset(catalog, ws, name).compute()
    df = df.drop(columns=[c for c in df.columns if c == "_batch_id"])  # a batch id per landing
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.mark.slurm
def test_demo_pipeline_with_workers_as_slurm_jobs_equals_the_local_run(slurm, demo, tmp_path):
    catalog, local_ws, local = demo
    done = _cli_process(
        "run", "--json", "--catalog", str(DEMO_CATALOG), "--workspace", str(tmp_path),
        "--cluster", "slurm", "--cores", "1", "--memory", "3GB", "--jobs", "2",
        "--walltime", "00:20:00",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    ws = wb.Workspace(tmp_path)
    # the workers really were SLURM jobs: their logs are in the workspace, one per job
    logs = sorted(ws.path("jobs", "workers").glob("dask-worker-*.err"))
    assert len(logs) == 2 and all("Starting Worker" in p.read_text() for p in logs)
    run = wb.RunStore(ws.runs_db).runs()[0]
    assert (run["status"], run["cluster"]) == ("succeeded", "slurm")
    # every step counted the same rows and quarantined for the same reasons
    ours = {s["step"]: s for s in summary["steps"]}
    for step in local.steps:
        if step.step.startswith(("promote", "curate", "cube")):
            assert (ours[step.step]["rows_in"], ours[step.step]["rows_out"]) == (
                step.rows_in,
                step.rows_out,
            ), step.step
        if step.step.startswith("promote"):
            assert ours[step.step]["details"]["reasons"] == json.loads(
                json.dumps(step.details["reasons"])
            )
    for name in ("flights", "weather", "flights_enriched"):
        pd.testing.assert_frame_equal(_lake(catalog, ws, name), _lake(catalog, local_ws, name))
    for cube in catalog.cubes:
        a = xr.open_zarr(wb.cubes.current_cube_path(ws, cube)).load()
        b = xr.open_zarr(wb.cubes.current_cube_path(local_ws, cube)).load()
        xr.testing.assert_equal(a, b)
    for model, step in ((m, f"train:{m}") for m in catalog.models):
        theirs = next(s for s in local.steps if s.step == step).details["metrics"]
        mine = ours[step]["details"]["metrics"]
        assert mine["train_rows"] == theirs["train_rows"], model
        assert abs(mine["roc_auc"] - theirs["roc_auc"]) < 0.01, (mine, theirs)


@pytest.mark.slurm
def test_job_submit_runs_the_demo_and_cancel_keeps_the_last_commit(slurm, demo, tmp_path):
    catalog, local_ws, _ = demo
    ws_dir = tmp_path / "ws"
    common = ["--catalog", str(DEMO_CATALOG), "--workspace", str(ws_dir)]
    done = _cli(
        "job", "submit", "--profile", "slurm", "--walltime", "00:20:00", "--cores", "2",
        "--memory", "6GB", "--json", *common,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] in ("pending", "running") and job["scheduler_id"]
    done = _cli("job", "status", job["id"], "--wait", "400", "--json", *common)
    info = json.loads(done.stdout)
    assert done.returncode == 0 and info["status"] == "succeeded", _cli(
        "job", "logs", job["id"], *common
    ).stdout
    ws = wb.Workspace(ws_dir)
    folder = Path(info["folder"])
    assert {"job.sh", "job.json", "job.out", "job.err", "state.json", "result.json"} <= {
        p.name for p in folder.iterdir()
    }
    run = next(r for r in wb.RunStore(ws.runs_db).runs() if r["run_id"] == info["run_id"])
    assert run["status"] == "succeeded"
    assert run["cluster"] == f"slurm job {job['scheduler_id']} ({job['id']})"
    out = _cli("job", "logs", job["id"], *common).stdout
    assert "succeeded train:departure_delay" in out
    pd.testing.assert_frame_equal(
        _lake(catalog, ws, "flights"), _lake(catalog, local_ws, "flights")
    )
    assert wb.open_cube(catalog, ws, "flight_delays") is not None

    # A second run, cancelled while it trains the model (its longest step): the steps it had
    # finished stay committed, the model it was training never appears. Its catalog changes
    # the model's parameters, so training is stale (the rest is reused).
    _, first_meta = wb.load_model(ws, "departure_delay")
    models = _model_versions(ws)
    changed = tmp_path / "data_catalog.yaml"
    changed.write_text(
        DEMO_CATALOG.read_text().replace("learning_rate: 0.05,", "learning_rate: 0.06,", 1)
    )
    second = submit_job(changed, ws, profile="slurm", walltime="00:20:00", cores=2, memory="6GB")
    out_file = Path(second.folder) / "job.out"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if out_file.exists() and "start train:departure_delay" in out_file.read_text():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the second job never reached train:departure_delay")
    done = _cli("job", "cancel", second.id, "--wait", "60", "--json", *common)
    cancelled = json.loads(done.stdout)
    assert cancelled["status"] == "cancelled", cancelled
    assert "during train:departure_delay" in cancelled["error"]
    assert "succeeded train:departure_delay" not in out_file.read_text()
    run = next(r for r in wb.RunStore(ws.runs_db).runs() if r["run_id"] == cancelled["run_id"])
    assert run["status"] == "cancelled" and "train:departure_delay" in run["error"]
    assert _model_versions(ws) == models
    _, meta = wb.load_model(ws, "departure_delay")
    assert meta["version"] == first_meta["version"] and meta["sha256"] == first_meta["sha256"]
    pd.testing.assert_frame_equal(
        _lake(catalog, ws, "flights"), _lake(catalog, local_ws, "flights")
    )
    assert _cli("job", "status", second.id, *common).returncode == 3


@pytest.mark.slurm
def test_a_worker_job_cancelled_mid_run_still_gives_the_right_lake(slurm, demo, tmp_path):
    catalog, local_ws, _ = demo
    proc = subprocess.Popen(
        [sys.executable, "-c", "from workbench.cli import app; app()", "run", "promote:flights",
         "--catalog", str(DEMO_CATALOG), "--workspace", str(tmp_path), "--cluster", "slurm",
         "--cores", "1", "--memory", "3GB", "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "land:flights" in line:
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert seen.wait(240), "".join(lines) + proc.stderr.read()
        worker_logs = sorted(wb.Workspace(tmp_path).path("jobs", "workers").glob("*.err"))
        victim = re.search(r"dask-worker-(\d+)", worker_logs[0].name).group(1)
        subprocess.run(["scancel", victim], check=True)
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    ws = wb.Workspace(tmp_path)
    run = wb.RunStore(ws.runs_db).runs()[0]
    print(f"worker job {victim} cancelled mid-run: exit {code}, run {run['status']}")
    if code == 0:
        assert run["status"] == "succeeded"
        flights = _lake(catalog, ws, "flights")
        pd.testing.assert_frame_equal(flights, _lake(catalog, local_ws, "flights"))
    else:  # a clear error, and the lake has no version of this run
        assert code == 3 and "promote:flights" in proc.stderr.read()
        assert not wb.list_batches(ws, "flights") or not (ws.path("lake", "flights")).exists()
    state = subprocess.run(
        ["scontrol", "show", "job", "-o", victim], capture_output=True, text=True
    )
    assert "JobState=CANCELLED" in state.stdout


@pytest.mark.slurm
def test_srun_layout_scheduler_file_client_and_workers_as_tasks(slurm, tmp_path):
    path, catalog, ws = _orders(tmp_path, n=800)
    # one node of 2 CPUs holds scheduler + client + 2 workers only with --overcommit
    job = submit_job(
        path, ws, layout="srun", cores=1, processes=1, memory="2GB", walltime="00:10:00",
        directives=["--overcommit"], nodes=1,
    )  # fmt: skip
    info = _wait_job(ws, job.id, timeout=180)
    assert info.status == "succeeded", (Path(job.folder) / "job.err").read_text()[-3000:]
    assert "srun cluster: 1 workers" in (Path(job.folder) / "job.out").read_text()
    # task 0 was the scheduler, on loopback (its scheduler file goes away when it closes)
    err = (Path(job.folder) / "job.err").read_text()
    assert re.search(r"Scheduler at:\s+tcp://127\.0\.0\.1:\d+", err)
    orders = wb.read_dataset(catalog, ws, "orders").compute()
    expected = pd.read_csv(tmp_path / "data" / "orders_1.csv")
    assert sorted(orders.order_id) == sorted(expected.order_id)
    assert orders.amount.sum() == pytest.approx(expected.amount.sum())


@pytest.mark.slurm
def test_srun_layout_on_a_cluster_interface_speaks_tls(slurm, tmp_path):
    interface, address = _cluster_interface()
    path, catalog, ws = _orders(tmp_path, n=200)
    job = submit_job(
        path, ws, ["orders"], layout="srun", cores=1, processes=1, memory="2GB",
        walltime="00:10:00", directives=["--overcommit"], scheduler_interface=interface,
    )  # fmt: skip
    info = _wait_job(ws, job.id, timeout=180)
    err = (Path(job.folder) / "job.err").read_text()
    assert info.status == "succeeded", err[-3000:]
    # scheduler, worker and client tasks all on TLS, with the job's own credentials
    assert re.search(rf"Scheduler at:\s+tls://{re.escape(address)}:\d+", err)
    assert re.search(r"Start worker at:\s+tls://", err)
    assert "srun cluster: 1 workers" in (Path(job.folder) / "job.out").read_text()
    assert len(wb.read_dataset(catalog, ws, "orders").compute()) > 0


@pytest.mark.slurm
def test_failed_job_reports_the_first_error_of_its_run(slurm, tmp_path):
    path, catalog, ws = _orders(tmp_path)
    (tmp_path / "data" / "customers.csv").unlink()  # the catalog names a file that is gone
    job = submit_job(path, ws, cores=1, memory="1GB", walltime="00:05:00")
    info = _wait_job(ws, job.id)
    assert info.status == "failed"
    assert "customers" in info.error and "customers.csv" in info.error
    run = wb.RunStore(ws.runs_db).runs()[0]
    assert run["status"] == "failed" and info.run_id == run["run_id"]
    done = _cli("job", "status", job.id, "--catalog", str(path))
    assert done.returncode == 3 and "failed" in done.stdout


@pytest.mark.slurm
def test_tls_cluster_on_slurm(slurm, tmp_path):
    tls = _certificates(tmp_path)
    client = wb.get_client(
        "slurm", cores=1, memory="1GB", jobs=1, security=tls,
        default_log_directory=str(tmp_path / "logs"),
    )  # fmt: skip
    try:
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        workers = client.scheduler_info()["workers"]
        assert workers and all(a.startswith("tls://127.0.0.1:") for a in workers)
        assert client.submit(sum, range(10)).result() == 45
    finally:
        wb.close_client(client)
    # No security given, a scheduler on a cluster interface: TLS all the same (temporary
    # credentials, the workers' copy of the key beside their logs, never in the checkout).
    interface, address = _cluster_interface()
    logs = tmp_path / "auto-logs"
    client = wb.get_client(
        "slurm", cores=1, memory="1GB", jobs=1, scheduler_interface=interface,
        default_log_directory=str(logs),
    )  # fmt: skip
    try:
        assert client.scheduler.address.startswith(f"tls://{address}:")
        client.wait_for_workers(1, timeout=120)
        workers = client.scheduler_info()["workers"]
        assert workers and all(a.startswith("tls://") for a in workers)
        assert client.submit(sum, range(10)).result() == 45
        assert any(p.name.startswith(".dask-jobqueue.worker.key") for p in logs.iterdir())
    finally:
        wb.close_client(client)


def _cluster_interface() -> tuple[str, str]:
    """A non-loopback interface with an IPv4 address (traffic to it stays on this machine)."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        for a in addresses:
            if a.family.name == "AF_INET" and not a.address.startswith("127."):
                return name, a.address
    pytest.skip("this machine has no non-loopback IPv4 interface")


def _model_versions(ws: wb.Workspace) -> list[str]:
    # staging folders (".v3.tmp") are not versions: readers never see them
    return sorted(
        p.name for p in ws.path("models", "departure_delay").iterdir() if p.name[0] != "."
    )


@pytest.mark.slurm
def test_adaptive_profile_submits_jobs_for_work_and_releases_them(slurm, tmp_path):
    client = wb.get_client(
        "slurm", cores=1, memory="1GB", minimum_jobs=0, maximum_jobs=2,
        default_log_directory=str(tmp_path / "logs"),
    )  # fmt: skip
    try:
        assert client.scheduler_info()["workers"] == {}  # nothing asked for yet

        def slow_square(x):
            time.sleep(0.5)
            return x * x

        futures = client.map(slow_square, range(20))
        assert client.gather(futures) == [x * x for x in range(20)]
        started = sorted(p.name for p in (tmp_path / "logs").glob("*.err"))
        assert 1 <= len(started) <= 2, started  # worker jobs came, within maximum-jobs
        del futures
        deadline = time.monotonic() + 90
        while client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(1)
        assert client.scheduler_info()["workers"] == {}, "idle worker jobs were not released"
    finally:
        wb.close_client(client)
