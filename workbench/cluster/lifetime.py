"""Walltimes and worker lifetimes: workers retire before the batch system ends their job."""

from __future__ import annotations

import math
import re
from typing import Any

from dask.utils import parse_timedelta

from workbench.errors import ProfileError


def worker_lifetime(
    name: str, settings: dict, walltime: Any, kind: str
) -> tuple[float | None, float | None]:
    """Worker lifetime and stagger so that workers retire before the walltime ends a job.

    ``auto`` takes the walltime, less a stagger (5% of it, at most 10 min) and a margin
    for the worker to hand its data on (5%, at least 1 min and at most 10 min).
    """
    lifetime, stagger = settings.get("lifetime"), settings.get("lifetime-stagger")
    seconds = parse_walltime(walltime, kind) if walltime else None
    if stagger == "auto":
        stagger = min(0.05 * seconds, 600) if seconds else None
    else:
        stagger = duration(name, "lifetime-stagger", stagger)
    if lifetime == "auto":
        if not seconds:
            return None, None
        margin = max(60.0, min(0.05 * seconds, 600.0))
        lifetime = seconds - (stagger or 0) - margin
        if lifetime <= 0:
            return None, None
        return float(math.floor(lifetime)), stagger and float(math.floor(stagger))
    return duration(name, "lifetime", lifetime), stagger


_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_walltime(text: Any, kind: str) -> float:
    """Seconds in a batch system's walltime: ``HH:MM:SS``, ``D-HH:MM:SS``, LSF's ``HH:MM``.

    Examples
    --------
    >>> parse_walltime("01:30:00", "slurm"), parse_walltime("2-00:00:00", "slurm")
    (5400.0, 172800.0)
    >>> parse_walltime("00:30", "lsf"), parse_walltime("90", "slurm")
    (1800.0, 5400.0)
    """
    match = _WALLTIME.match(str(text).strip())
    if not match:
        raise ProfileError(
            f"walltime {text!r} is not understood; write it as HH:MM:SS (e.g. 01:00:00)"
            + (" or HH:MM for LSF" if kind == "lsf" else "")
            + "."
        )
    days, *parts = match.groups()
    numbers = [int(p) for p in parts if p is not None]
    if len(numbers) == 3:
        h, m, s = numbers
    elif days:  # SLURM's D-HH and D-HH:MM
        h, m, s = (*numbers, 0, 0)[:3]
    elif len(numbers) == 2:
        # LSF writes [HH:]MM, SLURM MM:SS.
        h, m, s = (numbers[0], numbers[1], 0) if kind == "lsf" else (0, *numbers)
    else:
        # A bare number: minutes for SLURM and LSF, seconds for PBS, SGE and HTCondor.
        h, m, s = (0, numbers[0], 0) if kind in ("slurm", "lsf") else (0, 0, numbers[0])
    return float(((int(days or 0) * 24 + h) * 60 + m) * 60 + s)


def duration(name: str, key: str, value: Any) -> float | None:
    if value in (None, False, "", 0):
        return None
    try:
        return float(parse_timedelta(value, default="s"))
    except (ValueError, KeyError) as exc:
        raise ProfileError(
            f"{key} {value!r} in profile {name!r} is not a duration; write e.g. 50m or 3600s."
        ) from exc


def clock(seconds: float | None) -> str | None:
    if not seconds:
        return None
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"
