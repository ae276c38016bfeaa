"""`workbench cube`: build, refresh, query and describe cubes."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from workbench.cli import (
    DEFAULT_CATALOG,
    CatalogOpt,
    ClusterOpt,
    JsonOpt,
    WaitOpt,
    WorkspaceOpt,
    _open,
    _print_json,
    _reported,
    _run_steps,
    _session,
    console,
    cube_app,
    err,
    print_run_summary,
)


@cube_app.command("build")
def cube_build(
    name: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the cube from its source as it is now (`workbench run NAME` also refreshes the
    steps upstream)."""
    with _reported():
        result = _run_steps(
            catalog,
            workspace,
            cluster,
            [f"cube:{name}"],
            err if as_json else console,
            upstream=False,
            lock_wait=wait,
            force=[f"cube:{name}"],  # asked for by name: built even when up to date
        )
    if as_json:
        _print_json(result.to_dict())
    else:
        print_run_summary(result, catalog)


@cube_app.command("refresh")
def cube_refresh(
    name: str,
    since: Annotated[str, typer.Option(help="first date whose cells are recomputed")],
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the cube's time range from SINCE on, and append new periods."""
    from workbench.cubes.build import refresh_cube
    from workbench.io.locks import target_lock

    with (
        _session(catalog, workspace, cluster) as (cat, ws),
        target_lock(ws, "cubes", name, doing=f"cube refresh {name}", wait=wait),
    ):
        build = refresh_cube(cat, ws, name, since)
    if as_json:
        _print_json(build.__dict__)
    else:
        console.print(
            f"{name} v{build.version}: {build.mode}, {build.seconds:.1f} s, cuboids {build.cuboids}"
        )


def _parse_where(items: list[str]) -> dict[str, object]:
    """``level=a`` (one member), ``level=a,b`` (several), ``level=a..b`` (a range)."""
    where = {}
    for item in items:
        level, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(
                f"--where {item!r}: write LEVEL=MEMBER[,MEMBER] or LEVEL=FROM..TO"
            )
        if ".." in value:
            start, _, stop = value.partition("..")
            where[level] = slice(start or None, stop or None)
        else:
            members = value.split(",")
            where[level] = members if len(members) > 1 else members[0]
    return where


@cube_app.command("query")
def cube_query(
    name: str,
    by: Annotated[str, typer.Option(help="levels to group by, comma-separated")] = "",
    where: Annotated[list[str] | None, typer.Option(help="LEVEL=A[,B] or LEVEL=FROM..TO")] = None,
    measure: Annotated[list[str] | None, typer.Option(help="measures (default: all)")] = None,
    having: Annotated[
        str | None, typer.Option(help="filter on measures, e.g. 'flights > 100'")
    ] = None,
    explain: Annotated[bool, typer.Option(help="say which cuboid answers and why")] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Query a cube: group by levels, keep members, pick measures."""
    from workbench.cubes import Query, open_cube

    with _reported():
        cat, ws = _open(catalog, workspace)
        cube = open_cube(cat, ws, name)
        members = [m for part in (measure or []) for m in part.split(",")]
        query = Query(
            tuple(b for b in by.split(",") if b),
            tuple(_parse_where(where or []).items()),
            tuple(members) or None,
            having,
        )
        answer = cube.run(query)
        plan = cube.explain(query)
    if as_json:
        _print_json(
            {
                "cuboid": plan.chosen,
                "rows": json.loads(
                    answer.reset_index().to_json(orient="records", date_format="iso")
                ),
            }
        )
        return
    frame = _with_labels(cube.dataset, answer.reset_index())
    table = Table(*map(str, frame.columns), title=f"{name}: {len(frame):,} rows from {plan.chosen}")
    for row in frame.head(200).itertuples(index=False):
        table.add_row(*(_cell(level, v) for level, v in zip(frame.columns, row, strict=True)))
    console.print(table)
    if explain:
        console.print(str(plan))


def _with_labels(base, frame):
    """A ``<level> label`` column beside each level whose labels the catalog declares."""
    for level in [c for c in frame.columns if f"{c}_label" in base.coords]:
        names = dict(zip(base[level].values, base[f"{level}_label"].values, strict=True))
        at = frame.columns.get_loc(level) + 1
        frame.insert(at, f"{level} label", frame[level].map(names).to_numpy())
    return frame


def _cell(level: str, value) -> str:
    """Whole sums without decimals, periods as periods (``2024Q1``, ``2024-03``)."""
    import pandas as pd

    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.3f}"
    if isinstance(value, pd.Timestamp):
        if level == "year":
            return f"{value.year}"
        if level == "quarter":
            return f"{value.year}Q{value.quarter}"
        return value.strftime("%Y-%m" if level == "month" else "%Y-%m-%d")
    return str(value)


@cube_app.command("info")
def cube_info(
    name: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Levels, measures and cuboids of the current version."""
    from workbench.cubes import open_cube

    with _reported():
        cat, ws = _open(catalog, workspace)
        cube = open_cube(cat, ws, name)
    info = {
        "cube": name,
        "version": cube.version,
        "levels": cube.levels,
        "measures": cube.stored_measures,
        "derived_measures": cube.derived_measures,
        "cuboids": {c.name: dict(c.dataset.sizes) for c in cube.cuboids},
    }
    if as_json:
        _print_json(info)
        return
    console.print(f"[bold]{name}[/] version {cube.version}")
    levels = Table("level", "dimension", "role")
    for level, (dim, role) in cube.levels.items():
        levels.add_row(level, dim, role)
    console.print(levels)
    cuboids = Table("cuboid", "shape", "cells")
    for c in cube.cuboids:
        cuboids.add_row(
            c.name, " x ".join(f"{k} {v}" for k, v in c.dataset.sizes.items()), f"{c.cells:,}"
        )
    console.print(cuboids)
    console.print("measures: " + ", ".join(cube.stored_measures))
    console.print("derived: " + ", ".join(f"{k} = {v}" for k, v in cube.derived_measures.items()))
