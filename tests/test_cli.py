"""The command line: exit codes, JSON output, messages naming the key."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from workbench.cli import app

from .conftest import DEMO_CATALOG

runner = CliRunner()


def test_catalog_check_ok():
    result = runner.invoke(app, ["catalog", "check", "--catalog", str(DEMO_CATALOG)])
    assert result.exit_code == 0 and "6 datasets" in result.output


def test_catalog_check_bad_catalog_exits_2(small_catalog):
    small_catalog.write_text(small_catalog.read_text().replace("from: flights", "from: flight"))
    result = runner.invoke(app, ["catalog", "check", "--catalog", str(small_catalog)])
    assert result.exit_code == 2
    assert "datasets.flights_enriched.from" in result.output and "'flight'" in result.output


def test_catalog_list_json():
    result = runner.invoke(app, ["catalog", "list", "--json", "--catalog", str(DEMO_CATALOG)])
    rows = json.loads(result.output)
    assert {r["name"] for r in rows} >= {"flights", "flight_delays", "departure_delay"}


def test_catalog_show_unknown_name():
    result = runner.invoke(app, ["catalog", "show", "nope", "--catalog", str(DEMO_CATALOG)])
    assert result.exit_code == 2 and "flights" in result.output


def test_run_json_on_a_scheduler_address(client, tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            "airlines",
            "--json",
            "--catalog",
            str(DEMO_CATALOG),
            "--workspace",
            str(tmp_path),
            "--cluster",
            client.scheduler.address,
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["status"] == "succeeded"
    promote = next(s for s in summary["steps"] if s["step"] == "promote:airlines")
    assert promote["rows_out"] == 16
