"""The step registry decides once, from the run store, what is stale and why (issue 16)."""

from __future__ import annotations

import sqlite3

import pytest

import workbench as wb
from workbench.pipeline import STEP_KINDS, plan_run
from workbench.pipeline.steps import table_version
from workbench.testing import orders_catalog, random_orders, write_customers


@pytest.fixture
def orders(tmp_path, client):
    data = tmp_path / "data"
    write_customers(data)
    random_orders(1, 40).to_csv(data / "orders_1.csv", index=False)
    path = orders_catalog(tmp_path, data)
    catalog = wb.load_catalog(path)
    return path, catalog, wb.Workspace.for_catalog(catalog)


def _status(result) -> dict[str, tuple[str, str]]:
    return {s.step: (s.status, s.reason) for s in result.steps}


def test_every_kind_is_a_registered_class():
    assert set(STEP_KINDS) == {
        "land",
        "promote",
        "curate",
        "cube",
        "features",
        "train",
        "score",
        "monitor",
    }


def test_a_second_run_with_nothing_changed_reuses_every_step(orders):
    _, catalog, ws = orders
    first = wb.run_pipeline(catalog, ws)
    assert {s: v[1] for s, v in _status(first).items()} == {
        "land:customers": "never run",
        "land:orders": "never run",
        "promote:customers": "never run",
        "promote:orders": "never run",
    }
    lake_version = table_version(ws.path("lake", "orders"))
    second = wb.run_pipeline(catalog, ws)
    assert {v for v in _status(second).values()} == {("reused", "up to date")}
    assert table_version(ws.path("lake", "orders")) == lake_version  # nothing committed
    # The reused steps still report what their last run made.
    promote = next(s for s in second.steps if s.step == "promote:orders")
    assert promote.rows_out + promote.details["quarantined"] == 40


def test_a_changed_rule_reruns_that_promotion_only(orders):
    path, catalog, ws = orders
    wb.run_pipeline(catalog, ws)
    path.write_text(path.read_text().replace("value: 0}", "value: 100}"))
    catalog = wb.load_catalog(path)
    plan = {d.step: (d.run, d.reason) for d in plan_run(catalog, ws)}
    assert plan == {
        "land:customers": (False, "up to date"),
        "land:orders": (False, "up to date"),
        "promote:customers": (False, "up to date"),
        "promote:orders": (True, "spec changed in the catalog"),
    }
    result = _status(wb.run_pipeline(catalog, ws))
    assert result["promote:orders"] == ("succeeded", "spec changed in the catalog")
    assert result["promote:customers"][0] == "reused"


def test_a_new_file_runs_landing_and_promotion_and_says_why(orders, tmp_path):
    _, catalog, ws = orders
    wb.run_pipeline(catalog, ws)
    old_batch = wb.list_batches(ws, "orders")[-1].batch_id
    random_orders(2, 10).assign(order_id=lambda d: d.order_id + 1000).to_csv(
        tmp_path / "data" / "orders_2.csv", index=False
    )
    result = _status(wb.run_pipeline(catalog, ws))
    assert result["land:orders"] == ("succeeded", "input files changed from 1 entry to 2 entries")
    new_batch = wb.list_batches(ws, "orders")[-1].batch_id
    assert result["promote:orders"] == (
        "succeeded",
        f"input batch changed from {old_batch} to {new_batch}",
    )
    assert result["promote:customers"][0] == "reused"


def test_force_redoes_a_step(orders):
    _, catalog, ws = orders
    wb.run_pipeline(catalog, ws)
    before = table_version(ws.path("lake", "customers"))
    result = _status(wb.run_pipeline(catalog, ws, force=["customers"]))
    assert result["promote:customers"] == ("succeeded", "forced (--force)")
    assert table_version(ws.path("lake", "customers")) == before + 1
    # orders checks its customers against that table: a new version of it makes orders stale.
    assert result["promote:orders"] == (
        "succeeded",
        f"input lake/customers changed from v{before} to v{before + 1}",
    )
    assert result["land:orders"][0] == "reused"


def test_a_missing_output_is_rebuilt(orders):
    import shutil

    _, catalog, ws = orders
    wb.run_pipeline(catalog, ws)
    shutil.rmtree(ws.path("lake", "customers"))
    result = _status(wb.run_pipeline(catalog, ws, ["customers"]))
    assert result["promote:customers"] == ("succeeded", "output missing")


def test_a_run_store_from_before_the_plan_columns_still_works(orders):
    _, catalog, ws = orders
    with sqlite3.connect(ws.runs_db) as con:
        con.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at "
            "TEXT, status TEXT NOT NULL, catalog TEXT, targets TEXT, cluster TEXT, error TEXT);"
            "CREATE TABLE steps (run_id TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, "
            "target TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL, seconds "
            "REAL, rows_in INTEGER, rows_out INTEGER, inputs TEXT, outputs TEXT, details TEXT, "
            "error TEXT, PRIMARY KEY (run_id, step));"
        )
    result = wb.run_pipeline(catalog, ws)
    assert {s.status for s in result.steps} == {"succeeded"}
