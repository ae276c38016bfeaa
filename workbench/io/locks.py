"""Workspace locks: one writer per target at a time, the holder named, dead holders never block.

A lock is the file ``<workspace>/.locks/<zone>.<name>.lock`` held with ``fcntl.flock``. The
kernel drops a flock when its process dies (SIGKILL, segfault, OOM), so a lock of a dead
holder is free for the next writer without any guessing; the JSON the holder wrote into the
file (run id, pid, host, since) stays behind and is reported as taken over. Lock files are
never deleted: deleting one while another process waits on it would let two writers in.

Readers (``read_table``, ``open_cube``, dashboards) never take a lock: every write is a new
version committed in one step, so readers see the old version or the new one.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import config
from workbench.errors import TargetLocked
from workbench.io.workspace import Workspace

LOCKS = ".locks"
_POLL_SECONDS = 0.2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a lock: what it does, its process and since when (UTC)."""

    doing: str
    pid: int
    host: str
    since: str
    run_id: str | None = None

    def describe(self) -> str:
        run = f"run {self.run_id}, " if self.run_id else ""
        return f"{self.doing} ({run}pid {self.pid} on {self.host}, since {self.since})"

    def alive(self) -> bool:
        """False only when the process is known to be gone; a pid on another host counts as
        alive, since it cannot be checked from here."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by another user
            return True
        return True

    @property
    def started(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.since)


def lock_path(ws: Workspace, zone: str, name: str) -> Path:
    return ws.path(LOCKS, f"{zone}.{name}.lock")


@contextmanager
def target_lock(
    ws: Workspace,
    zone: str,
    name: str,
    *,
    doing: str,
    run_id: str | None = None,
    wait: float | None = None,
) -> Iterator[Holder]:
    """Hold the write lock of ``zone/name`` for the body; wait up to ``wait`` seconds for it.

    ``wait`` falls back to the ``workbench.lock-wait`` setting (0: fail at once). When the
    lock stays held, :class:`TargetLocked` names the holder.

    Examples
    --------
    >>> with target_lock(ws, "cubes", "sales", doing="cube build sales"):  # doctest: +SKIP
    ...     build_cube(catalog, ws, "sales")
    """
    path = lock_path(ws, zone, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, f"{zone}/{name}", float(config.get("lock-wait", wait)))
        previous = _read(path)
        if previous is not None:
            # A holder that releases clears the file: content left means it died holding it.
            log.warning("%s/%s: taking over from %s, which died", zone, name, previous.describe())
        me = Holder(doing, os.getpid(), socket.gethostname(), _now(), run_id)
        _write(fd, json.dumps(asdict(me)))
        try:
            yield me
        finally:
            _write(fd, "")
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _acquire(fd: int, path: Path, target: str, wait: float) -> None:
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TargetLocked(_held_message(path, target, wait)) from None
            time.sleep(_POLL_SECONDS)


def _held_message(path: Path, target: str, wait: float) -> str:
    holder = _read(path, attempts=5)
    who = holder.describe() if holder else "a process that is just starting"
    waited = f" after waiting {wait:g} s" if wait > 0 else ""
    return (
        f"{target} is being written by {who}{waited}. Let it finish, or queue behind it with "
        f"`--wait SECONDS` (or the workbench.lock-wait setting). Lock file: {path}"
    )


def _read(path: Path, attempts: int = 1) -> Holder | None:
    """The holder recorded in a lock file; None when the file is empty (released)."""
    for _ in range(attempts):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if text.strip():
            try:
                return Holder(**json.loads(text))
            except (ValueError, TypeError):
                pass  # being rewritten right now
        time.sleep(0.05 if attempts > 1 else 0)
    return None


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
    os.fsync(fd)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def running_holders(ws: Workspace) -> list[Holder]:
    """Holders of the workspace's locks that are still running (any target), oldest first."""
    folder = ws.path(LOCKS)
    found = [_read(p) for p in sorted(folder.glob("*.lock"))] if folder.exists() else []
    return sorted((h for h in found if h is not None and h.alive()), key=lambda h: h.since)
