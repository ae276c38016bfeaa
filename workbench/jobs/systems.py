"""What differs between batch systems for a pipeline job: directives, commands, job states.

One small class per system; each differs by a few attributes and its ``directives``. Only SLURM
runs here (a real single-node cluster in CI); the PBS, SGE and LSF scripts follow the same
conventions as dask-jobqueue's and are checked as text.
"""

from __future__ import annotations

import re
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from dask.utils import parse_bytes

from workbench.cluster.script_safety import check_directive, check_word
from workbench.errors import ClusterError


@dataclass(frozen=True)
class Request:
    """The allocation a pipeline job asks for."""

    name: str
    out: str
    err: str
    walltime: str | None
    nodes: int = 1
    tasks: int = 1
    cpus_per_task: int = 1
    memory: str | None = None  # per node
    queue: str | None = None
    account: str | None = None
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchedulerState:
    """A job as the batch system reports it: its own state word, mapped to ours."""

    state: str  # the system's word, e.g. RUNNING, CANCELLED
    status: str  # pending | running | succeeded | failed | cancelled | timeout
    exit_code: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class BatchSystem(ABC):
    kind: str
    prefix: str
    submit_command: tuple[str, ...]
    cancel_command: tuple[str, ...]
    job_id_pattern: str = r"(\d+)"
    env_job_id: str = "JOB_ID"
    states: dict[str, str] = field(default_factory=dict)

    @abstractmethod
    def directives(self, req: Request) -> list[str]:
        """The ``#SBATCH`` / ``#PBS`` / ... lines asking for ``req``."""

    def walltime(self, seconds: float) -> str:
        """The walltime as this system writes it."""
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"

    def _limits(self, req: Request, walltime: str, account: str) -> list[str]:
        """Walltime, queue and account lines, spelled the way this system wants them."""
        lines = [walltime.format(req.walltime)] if req.walltime else []
        lines += [f"-q {req.queue}"] if req.queue else []
        return lines + ([account.format(req.account)] if req.account else [])

    def header(self, req: Request) -> str:
        check_request(req)
        return "\n".join(f"{self.prefix} {d}" for d in [*self.directives(req), *req.extra])

    def submit(self, script: str) -> str:
        """Submit the script file; return the system's job id."""
        out = _call([*self.submit_command, script], f"submit {script}")
        match = re.search(self.job_id_pattern, out)
        if not match:
            raise ClusterError(f"{self.submit_command[0]} printed no job id: {out.strip()!r}")
        return match.group(1)

    def cancel(self, job_id: str) -> None:
        _call([*self.cancel_command, job_id], f"cancel job {job_id}")

    def query(self, job_id: str) -> SchedulerState | None:
        """The job's state, or None when the system no longer knows it."""
        return None

    @property
    def queryable(self) -> bool:
        """Whether ``query`` asks the batch system (only SLURM's is written and tested)."""
        return type(self).query is not BatchSystem.query


class Slurm(BatchSystem):
    def directives(self, req: Request) -> list[str]:
        lines = [f"-J {req.name}", f"-o {req.out}", f"-e {req.err}"]
        if req.walltime:
            lines.append(f"-t {req.walltime}")
        lines += [f"-N {req.nodes}", f"-n {req.tasks}", f"--cpus-per-task={req.cpus_per_task}"]
        if req.memory:
            from dask_jobqueue.slurm import slurm_format_bytes_ceil

            lines.append(f"--mem={slurm_format_bytes_ceil(parse_bytes(req.memory))}")
        if req.queue:
            lines.append(f"-p {req.queue}")
        if req.account:
            lines.append(f"-A {req.account}")
        return lines

    def query(self, job_id: str) -> SchedulerState | None:
        try:
            out = _call(["scontrol", "show", "job", "-o", job_id], f"query job {job_id}")
        except ClusterError:
            return None  # past MinJobAge, or never known
        fields = dict(re.findall(r"(\w+)=(\S*)", out))
        state = fields.get("JobState", "UNKNOWN")
        return SchedulerState(
            state=state,
            status=self.states.get(state, "running"),
            exit_code=fields.get("ExitCode"),
            reason=fields.get("Reason"),
        )


class Pbs(BatchSystem):
    def directives(self, req: Request) -> list[str]:
        from dask_jobqueue.pbs import pbs_format_bytes_ceil

        select = f"select={req.nodes}:ncpus={req.tasks * req.cpus_per_task // req.nodes}"
        if req.memory:
            select += f":mem={pbs_format_bytes_ceil(parse_bytes(req.memory))}"
        lines = [f"-N {req.name}", f"-o {req.out}", f"-e {req.err}", f"-l {select}"]
        return lines + self._limits(req, "-l walltime={}", "-A {}")


class Sge(BatchSystem):
    def directives(self, req: Request) -> list[str]:
        lines = [f"-N {req.name}", f"-o {req.out}", f"-e {req.err}", "-cwd"]
        lines.append(f"-pe smp {req.cpus_per_task * req.tasks}")
        if req.memory:
            per_slot = parse_bytes(req.memory) // (req.cpus_per_task * req.tasks)
            lines.append(f"-l h_vmem={per_slot // 2**20}M")
        return lines + self._limits(req, "-l h_rt={}", "-P {}")


class Lsf(BatchSystem):
    def walltime(self, seconds: float) -> str:
        minutes = -(-int(seconds) // 60)  # LSF counts whole minutes: round up
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    def directives(self, req: Request) -> list[str]:
        from dask_jobqueue.lsf import lsf_format_bytes_ceil

        cpus = req.cpus_per_task * req.tasks
        lines = [f"-J {req.name}", f"-o {req.out}", f"-e {req.err}", f"-n {cpus}"]
        lines.append('-R "span[hosts=1]"')
        if req.memory:
            lines.append(f"-M {lsf_format_bytes_ceil(parse_bytes(req.memory))}")
        return lines + self._limits(req, "-W {}", '-P "{}"')


def check_request(req: Request) -> None:
    """Refuse a request whose values could end a directive line and start a shell command."""
    where = f"job {req.name}"
    for key in ("name", "walltime", "queue", "account"):
        value = getattr(req, key)
        if value is not None:
            check_word(key, value, where)
    if req.memory is not None:
        check_directive("memory", req.memory, where)
    for key in ("out", "err"):  # paths under the workspace
        check_directive("workspace path", getattr(req, key), where)
    for directive in req.extra:
        check_directive("directive", directive, where)


_SLURM_STATES = {
    "PENDING": "pending",
    "CONFIGURING": "pending",
    "REQUEUED": "pending",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "NODE_FAIL": "failed",
    "BOOT_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "CANCELLED": "cancelled",
    "PREEMPTED": "cancelled",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
}

SYSTEMS: dict[str, BatchSystem] = {
    "slurm": Slurm(
        "slurm",
        "#SBATCH",
        ("sbatch", "--parsable"),
        ("scancel",),
        r"^(\d+)",
        "SLURM_JOB_ID",
        _SLURM_STATES,
    ),
    "pbs": Pbs("pbs", "#PBS", ("qsub",), ("qdel",), r"(\d+(?:\.\S+)?)", "PBS_JOBID"),
    "sge": Sge("sge", "#$", ("qsub",), ("qdel",), r"Your job (\d+)", "JOB_ID"),
    "lsf": Lsf("lsf", "#BSUB", ("bsub",), ("bkill",), r"Job <(\d+)>", "LSB_JOBID"),
}


def batch_system(kind: str) -> BatchSystem:
    if kind not in SYSTEMS:
        raise ClusterError(
            f"batch submission supports {', '.join(SYSTEMS)}, not {kind!r}; for {kind}, run "
            f"from a login node with `workbench run --cluster {kind}` (workers as jobs)."
        )
    return SYSTEMS[kind]


def _call(cmd: list[str], what: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise ClusterError(
            f"cannot {what}: {cmd[0]} is not installed here; run this on a login node of the "
            "cluster (or use --dry-run to only write the script)."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"cannot {what}: {cmd[0]} did not answer within 60 s") from exc
    if done.returncode != 0:
        raise ClusterError(
            f"cannot {what}: {' '.join(cmd)} exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()}"
        )
    return done.stdout
