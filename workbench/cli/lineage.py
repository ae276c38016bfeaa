"""``workbench lineage NAME``: where a dataset, cube, feature set or model comes from and goes."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from workbench.cli import (
    DEFAULT_CATALOG,
    CatalogOpt,
    JsonOpt,
    WorkspaceOpt,
    _open,
    _reported,
    app,
    console,
)
from workbench.pipeline.lineage import DIRECTIONS, LineageGraph, lineage_of
from workbench.pipeline.lineage_svg import render_svg


@app.command()
def lineage(
    name: Annotated[
        str, typer.Argument(help="a dataset, cube, feature set or model, or lake/NAME")
    ],
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    columns: Annotated[
        bool, typer.Option("--columns", help="also show where each column of NAME comes from")
    ] = False,
    direction: Annotated[
        str, typer.Option(help="up (what NAME is made from), down (what uses it) or both")
    ] = "up",
    svg: Annotated[
        Path | None, typer.Option(help="also write the picture to this SVG file")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the lineage of NAME as a tree, with each dataset's version and the run that made it."""
    with _reported():
        if direction not in DIRECTIONS:
            raise typer.BadParameter(
                f"choose one of {', '.join(DIRECTIONS)}", param_hint="--direction"
            )
        cat, ws = _open(catalog, workspace)
        node, graph = lineage_of(cat, ws, name, direction=direction, columns=columns)
    if svg is not None:
        svg.write_text(render_svg(graph, highlight=node), encoding="utf-8")
    if as_json:
        print(json.dumps(_as_json(name, node, direction, graph, columns), indent=2, default=str))
        return
    console.print(_tree(graph, node, direction, columns))
    if svg is not None:
        console.print(f"Picture: {svg}")


def _as_json(name: str, node: str, direction: str, graph: LineageGraph, columns: bool) -> dict:
    out = {"name": name, "node": node, "direction": direction, **graph.to_dict()}
    if columns:
        out["columns"] = {
            n: {c: asdict(lin) for c, lin in cols.items()} for n, cols in graph.columns.items()
        }
    return out


def _tree(graph: LineageGraph, node: str, direction: str, columns: bool) -> Tree:
    root = Tree(f"[bold]{graph.nodes[node].label()}[/]")
    if columns:
        _add_columns(root.add("[bold]columns[/]"), graph, node)
    if direction == "both":
        _grow(root.add("[bold]upstream[/]"), graph, node, "up", set())
        _grow(root.add("[bold]downstream[/]"), graph, node, "down", set())
    else:
        _grow(root, graph, node, direction, set())
    return root


def _grow(branch: Tree, graph: LineageGraph, node: str, way: str, shown: set[str]) -> None:
    """Add ``node``'s parents (or children) under ``branch``; a dataset already shown is named
    again but not expanded, so shared inputs (airlines, read by three steps) stay readable."""
    edges = graph.parents(node) if way == "up" else graph.children(node)
    nexts = {(e.source if way == "up" else e.target): e.step for e in edges}
    for other, step in sorted(nexts.items()):
        label = f"{graph.nodes[other].label()}  [dim]{'→' if way == 'up' else '←'} {step}[/]"
        if other in shown:
            branch.add(f"{label} [dim](shown above)[/]")
            continue
        shown.add(other)
        _grow(branch.add(label), graph, other, way, shown)


def _add_columns(branch: Tree, graph: LineageGraph, node: str) -> None:
    cols = graph.columns.get(node, {})
    if not cols:
        branch.add("[dim]the catalog does not declare this dataset's columns[/]")
    for column, lin in cols.items():
        sources = ", ".join(str(s) for s in lin.sources) or "rows"
        branch.add(f"[cyan]{column}[/] ← {sources}  [dim]{lin.how}[/]")
