"""The lineage as a picture: a layered left-to-right DAG drawn as SVG in pure Python.

Each dataset sits in the column of its longest path from a source, so every arrow points right;
within a column, datasets are ordered by the mean row of their parents, which keeps most arrows
from crossing on pipelines as wide as a catalog's. No Graphviz is needed.
"""

from __future__ import annotations

import graphlib
from html import escape

from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.pipeline.lineage import (
    DatasetNode,
    Direction,
    LineageGraph,
    lineage_graph,
    lineage_of,
)

CHAR_W, BOX_H, GAP_X, GAP_Y, MARGIN = 7.2, 40, 60, 16, 20
COLOURS = {
    "source": "#eeeeee",
    "landing": "#fff3cd",
    "lake": "#d1e7dd",
    "quarantine": "#f8d7da",
    "curated": "#cfe2ff",
    "cubes": "#e2d9f3",
    "features": "#d2f4ea",
    "models": "#ffe5d0",
    "predictions": "#fde2e4",
    "monitoring": "#e9ecef",
}


def lineage_svg(
    catalog: Catalog,
    ws: Workspace | None = None,
    name: str | None = None,
    *,
    direction: Direction = "both",
) -> str:
    """The lineage of ``name`` (everything when None) as an SVG document.

    Examples
    --------
    >>> Path("lineage.svg").write_text(lineage_svg(catalog, ws, "flight_delays"))  # doctest: +SKIP
    """
    if name is None:
        return render_svg(lineage_graph(catalog, ws))
    node, graph = lineage_of(catalog, ws, name, direction=direction)
    return render_svg(graph, highlight=node)


def layers(graph: LineageGraph) -> dict[str, int]:
    """Dataset -> column: 0 for sources, else one more than its furthest parent."""
    order = graphlib.TopologicalSorter(
        {n: [e.source for e in graph.parents(n)] for n in graph.nodes}
    )
    layer: dict[str, int] = {}
    for n in order.static_order():
        layer[n] = max((layer[e.source] + 1 for e in graph.parents(n)), default=0)
    return layer


def _rows(graph: LineageGraph, layer: dict[str, int]) -> dict[str, int]:
    """Dataset -> row within its column, ordered by the mean row of its parents."""
    row: dict[str, int] = {}
    for col in range(max(layer.values(), default=-1) + 1):
        members = sorted(n for n, c in layer.items() if c == col)
        members.sort(key=lambda n: _mean([row[e.source] for e in graph.parents(n)], n, row))
        row |= {n: i for i, n in enumerate(members)}
    return row


def _mean(values: list[int], node: str, row: dict[str, int]) -> float:
    return sum(values) / len(values) if values else float(len(row))


def render_svg(graph: LineageGraph, *, highlight: str | None = None) -> str:
    """``graph`` as an SVG document: a box per dataset, an arrow per step input."""
    layer = layers(graph)
    row = _rows(graph, layer)
    width: dict[int, float] = {}
    for n, c in layer.items():
        width[c] = max(width.get(c, 0.0), _text_width(graph.nodes[n]))
    x = {c: MARGIN + sum(width[k] + GAP_X for k in range(c)) for c in width}
    box = {n: (x[layer[n]], MARGIN + row[n] * (BOX_H + GAP_Y), width[layer[n]]) for n in layer}
    total_w = max((bx + w for bx, _, w in box.values()), default=0) + MARGIN
    total_h = max((by + BOX_H for _, by, _ in box.values()), default=0) + MARGIN
    parts = [_header(total_w, total_h)]
    parts += [_arrow(box[e.source], box[e.target], e.step) for e in _unique(graph)]
    parts += [_node(graph.nodes[n], *box[n], n == highlight) for n in sorted(box)]
    return "\n".join([*parts, "</svg>"]) + "\n"


def _unique(graph: LineageGraph):
    """One arrow per pair of datasets (a step writing two outputs has an edge to each)."""
    seen = {}
    for e in graph.edges:
        seen.setdefault((e.source, e.target), e)
    return seen.values()


def _lines(node: DatasetNode) -> tuple[str, str]:
    detail = []
    if node.version is not None:
        detail.append(f"v{node.version}" if isinstance(node.version, int) else str(node.version))
    if node.run_id:
        detail.append(f"run {node.run_id}")
    if node.location:
        detail.append(node.location)
    return node.id, " · ".join(detail)


def _text_width(node: DatasetNode) -> float:
    return max(len(t) for t in _lines(node)) * CHAR_W + 16


def _header(w: float, h: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" font-family="monospace" font-size="12">\n'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
    )


def _arrow(src: tuple[float, float, float], dst: tuple[float, float, float], step: str) -> str:
    x1, y1 = src[0] + src[2], src[1] + BOX_H / 2
    x2, y2 = dst[0], dst[1] + BOX_H / 2
    mid = (x1 + x2) / 2
    return (
        f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} '
        f'{x2:.1f},{y2:.1f}" fill="none" stroke="#888" marker-end="url(#arrow)">'
        f"<title>{escape(step)}</title></path>"
    )


def _node(node: DatasetNode, x: float, y: float, w: float, highlight: bool) -> str:
    name, detail = _lines(node)
    stroke = ' stroke="#d63384" stroke-width="3"' if highlight else ' stroke="#666"'
    fill = COLOURS.get(node.zone, "#ffffff")
    writer = f"written by {node.step}" if node.step else "source"
    return (
        f'<g class="node" data-id="{escape(node.id)}"><title>{escape(node.id)}: '
        f"{escape(writer)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BOX_H}" rx="6" '
        f'fill="{fill}"{stroke}/>'
        f'<text x="{x + 8:.1f}" y="{y + 16:.1f}" font-weight="bold">{escape(name)}</text>'
        f'<text x="{x + 8:.1f}" y="{y + 32:.1f}" fill="#444">{escape(detail)}</text></g>'
    )
