"""Dataset- and column-level lineage, from the step graph, the catalog and the run store.

A dataset is named by its zone and name, as the run store's inputs name it: ``source/flights``
(the files), ``landing/flights`` (the batches as received), ``lake/flights``,
``quarantine/flights``, ``curated/flights_enriched``, ``cubes/flight_delays``,
``features/flight_features``, ``models/departure_delay``, ``predictions/departure_delay`` and
``monitoring/departure_delay``. Edges come from what each step reads and writes
(:meth:`Step.datasets`), so a new kind of step brings its lineage with it; versions come from the
latest successful record of the step that writes the dataset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from workbench.catalog.models import Catalog
from workbench.errors import CatalogError, DatasetNotFound
from workbench.io.workspace import Workspace
from workbench.pipeline.lineage_columns import ColumnLineage, column_lineage
from workbench.pipeline.steps import STEP_KINDS, Context, Step, dataset_id
from workbench.runs import RunStore

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")


@dataclass(frozen=True)
class DatasetNode:
    """One dataset of the lineage graph, with the step that writes it and its current version."""

    id: str
    step: str | None = None  # None for sources: nothing in the workbench writes them
    version: Any = None
    run_id: str | None = None  # the run of the step's latest successful record
    location: str | None = None  # where a source's files are

    @property
    def zone(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]

    def label(self) -> str:
        """``lake/flights v5 (run 20261130T101500-1a2b3c)``, as the tree and picture show it."""
        text = self.id
        if self.version is not None:
            text += f" v{self.version}" if isinstance(self.version, int) else f" {self.version}"
        if self.run_id:
            text += f" (run {self.run_id})"
        if self.location:
            text += f" {self.location}"
        return text


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    step: str


@dataclass(frozen=True)
class LineageGraph:
    """Datasets and the steps between them; acyclic, since the steps are."""

    nodes: dict[str, DatasetNode]
    edges: tuple[Edge, ...]
    columns: dict[str, dict[str, ColumnLineage]] = field(default_factory=dict)

    def parents(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.target == node]

    def children(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.source == node]

    def reachable(self, node: str, direction: Direction) -> set[str]:
        """``node`` and every dataset upstream (``up``), downstream (``down``) or both."""
        seen = {node}
        for way in ("up", "down") if direction == "both" else (direction,):
            stack = [node]
            while stack:
                here = stack.pop()
                edges = self.parents(here) if way == "up" else self.children(here)
                for nxt in (e.source if way == "up" else e.target for e in edges):
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
        return seen

    def subgraph(self, node: str, direction: Direction = "both") -> LineageGraph:
        keep = self.reachable(node, direction)
        edges = tuple(e for e in self.edges if e.source in keep and e.target in keep)
        nodes = {k: v for k, v in self.nodes.items() if k in keep}
        return LineageGraph(nodes, edges, {k: v for k, v in self.columns.items() if k in keep})

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [asdict(n) | {"zone": n.zone, "name": n.name} for n in self.nodes.values()],
            "edges": [asdict(e) for e in self.edges],
        }


def lineage_graph(
    catalog: Catalog, ws: Workspace | None = None, *, columns: bool = False
) -> LineageGraph:
    """The whole catalog's lineage; versions and runs from ``ws``'s run store when given.

    Examples
    --------
    >>> graph = lineage_graph(catalog, ws)  # doctest: +SKIP
    >>> graph.nodes["lake/flights"].label()  # doctest: +SKIP
    'lake/flights v5 (run 20261130T101500-1a2b3c)'
    """
    store = RunStore(ws.runs_db) if ws is not None and ws.runs_db.exists() else None
    nodes: dict[str, DatasetNode] = {}
    edges: list[Edge] = []
    for step in _steps(catalog):
        reads, writes = step.datasets(catalog)
        record = store.last_success(step.name) if store else None
        for i, out in enumerate(writes):
            version = _recorded_version(out, record)
            if version is None and i == 0 and ws is not None and record is not None:
                version = _live_version(step, catalog, ws)
            nodes[out] = DatasetNode(out, step.name, version, record and record["run_id"])
        edges += [Edge(r, w, step.name) for r in reads for w in writes]
    for edge in edges:
        if edge.source not in nodes:
            nodes[edge.source] = DatasetNode(edge.source, location=_location(catalog, edge.source))
    cols = {n: column_lineage(catalog, n) for n in nodes} if columns else {}
    return LineageGraph(dict(sorted(nodes.items())), tuple(edges), cols)


def _steps(catalog: Catalog) -> Iterable[Step]:
    for kind in STEP_KINDS.values():
        yield from kind.for_catalog(catalog)


def _recorded_version(node: str, record: dict | None) -> Any:
    """What the step recorded as the version of ``node``: ``lake_version`` for a lake table
    written by promotion, else ``version``, else the landed ``batch``."""
    if record is None:
        return None
    zone = node.split("/", 1)[0]
    found = [json.loads(record[k] or "{}") for k in ("outputs", "details")]
    for key in (f"{zone}_version", "version", "batch"):
        for values in found:
            if values.get(key) is not None:
                return values[key]
    return None


def _live_version(step: Step, catalog: Catalog, ws: Workspace) -> Any:
    """The version on disk, for steps that reused their output without recording its version."""
    try:
        return step.output(Context(catalog, ws))
    except Exception:  # lineage is read-only reporting: an unreadable output shows no version
        return None


def _location(catalog: Catalog, node: str) -> str | None:
    zone, name = node.split("/", 1)
    if zone == "source" and name in catalog.datasets and catalog.datasets[name].source:
        return catalog.datasets[name].source.path
    return None


def resolve_name(catalog: Catalog, graph: LineageGraph, name: str) -> str:
    """The lineage name of ``name``: a catalog name (``flights``, ``flight_delays``) or a
    lineage name (``quarantine/flights``). An unknown name raises, listing the known ones."""
    if name in graph.nodes:
        return name
    if name in catalog.datasets:
        return dataset_id(catalog, name)
    for zone, entries in (("cubes", catalog.cubes), ("features", catalog.features)):
        if name in entries:
            return f"{zone}/{name}"
    if name in catalog.models:
        return f"models/{name}"
    raise DatasetNotFound(
        f"no dataset, cube, feature set or model named {name!r}; choose from "
        f"{', '.join(catalog.names())}, or a lineage name such as "
        f"{', '.join(list(graph.nodes)[:3])}."
    )


def lineage_of(
    catalog: Catalog,
    ws: Workspace | None,
    name: str,
    *,
    direction: Direction = "up",
    columns: bool = False,
) -> tuple[str, LineageGraph]:
    """The lineage name of ``name`` and the part of the graph ``direction`` of it."""
    if direction not in DIRECTIONS:
        raise CatalogError(f"direction {direction!r} is unknown; choose up, down or both.")
    graph = lineage_graph(catalog, ws, columns=columns)
    node = resolve_name(catalog, graph, name)
    return node, graph.subgraph(node, direction)
