"""What a cube's levels mean: time truncation, hierarchy lookups, cuboid names and defaults."""

from __future__ import annotations

import pandas as pd

from workbench.catalog.models import TIME_LEVELS, Cube

MISSING_MEMBER = "(missing)"
_PERIOD = {"year": "Y", "quarter": "Q", "month": "M"}


def truncate(stamps: pd.Series, level: str) -> pd.Series:
    """Datetimes floored to the start of their ``level`` (naive UTC), e.g. month -> 2013-07-01."""
    stamps = pd.to_datetime(stamps)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if level in _PERIOD:
        out = stamps.dt.to_period(_PERIOD[level]).dt.start_time
    else:
        out = stamps.dt.floor("D" if level == "day" else "h")
    return out.astype("datetime64[ns]")


def category_members(values: pd.Series) -> pd.Series:
    """Text members with missing values made a visible member instead of dropped rows."""
    if values.dtype.kind in "biuf":
        return values
    return values.astype("str").fillna(MISSING_MEMBER)


def is_time(cube: Cube, dim_key: str) -> bool:
    return cube.dimensions[dim_key].levels is not None


def coarser(cube: Cube, dim_key: str, level: str) -> list[str]:
    """Levels of the dimension above ``level`` (coarse to fine)."""
    names = cube.dimensions[dim_key].level_names(dim_key)
    return names[: names.index(level)]


def can_reach(cube: Cube, dim_key: str, held: str, wanted: str) -> bool:
    """Whether a cuboid holding ``held`` of a dimension can answer questions about ``wanted``."""
    names = cube.dimensions[dim_key].level_names(dim_key)
    return wanted in names and names.index(wanted) <= names.index(held)


def cuboid_name(levels: list[str]) -> str:
    return "by_" + "_".join(levels) if levels else "total"


def default_aggregates(cube: Cube) -> list[list[str]]:
    """Each coarser time level with the other dimensions, then each dimension on its own."""
    grains = {key: dim.grain(key) for key, dim in cube.dimensions.items()}
    groups = []
    for key, dim in cube.dimensions.items():
        if dim.levels:
            for level in dim.levels[:-1][::-1]:
                groups.append([level if k == key else g for k, g in grains.items()])
    if len(grains) > 1:
        groups += [[g] for g in grains.values()]
    return groups


def time_coords(grain_values: pd.DatetimeIndex, levels: list[str]) -> dict[str, pd.DatetimeIndex]:
    """Coarser time levels for the stored grain, e.g. day -> month, quarter, year."""
    series = pd.Series(grain_values)
    return {level: pd.DatetimeIndex(truncate(series, level)) for level in levels}


__all__ = [
    "MISSING_MEMBER",
    "TIME_LEVELS",
    "can_reach",
    "category_members",
    "coarser",
    "cuboid_name",
    "default_aggregates",
    "is_time",
    "time_coords",
    "truncate",
]
