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


def test_validate_quarantine_history_and_gc_commands(client, tmp_path):
    from workbench.testing import orders_catalog, write_broken_orders, write_customers

    data = tmp_path / "data"
    write_customers(data)
    write_broken_orders(data)
    cat = orders_catalog(tmp_path, data)
    cat.write_text(
        cat.read_text().replace("max_quarantined_fraction: 1.0", "max_quarantined_fraction: 0.05")
    )
    common = ["--catalog", str(cat)]
    addr = ["--cluster", client.scheduler.address]
    result = runner.invoke(app, ["validate", "orders", *common, *addr])
    assert result.exit_code == 1, result.output
    assert "above the allowed 5.00%" in result.output and "parse:encoding" in result.output
    shown = runner.invoke(app, ["quarantine", "show", "orders", "--json", *common])
    rows = json.loads(shown.stdout)
    assert {r["_reasons"] for r in rows} >= {"parse:encoding", "references:customer"}
    history = runner.invoke(app, ["lake", "history", "customers", "--json", *common])
    assert json.loads(history.stdout)[0]["rows"] == 5
    gc = runner.invoke(app, ["landing", "gc", "--older-than", "0d", "--json", *common])
    by_name = {c["dataset"]: c for c in json.loads(gc.stdout)}
    assert len(by_name["customers"]["removed"]) == 1  # promoted: may go
    assert len(by_name["orders"]["kept_unpromoted"]) == 1  # failed its threshold: kept


REGRESSION_MODEL = """\
features:
  order_features:
    source: orders
    keys: [order_id]
    columns: [customer, order_id]
    categorical: [customer]
    label: amount
    split: {kind: random, test_fraction: 0.25, validation_fraction: 0.1, seed: 1}
models:
  order_amount:
    feature_set: order_features
    estimator: lightgbm_regressor
    params: {n_estimators: 10}
"""


def test_run_with_a_regressor_prints_its_regression_metrics(client, tmp_path):
    from workbench.testing import orders_catalog, random_orders, write_customers

    data = tmp_path / "data"
    write_customers(data)
    random_orders(7, 400).to_csv(data / "orders.csv", index=False)
    cat = orders_catalog(tmp_path, data)
    cat.write_text(cat.read_text() + REGRESSION_MODEL)
    result = runner.invoke(
        app, ["run", "--catalog", str(cat), "--cluster", client.scheduler.address]
    )
    assert result.exit_code == 0, result.output
    assert "Model order_amount v1: RMSE" in result.output
    assert "MAE" in result.output and "R²" in result.output


ORDERS_CUBE = """\
cubes:
  sales:
    source: orders
    dimensions:
      placed: {column: placed_at, levels: [month, day]}
      customer: {column: customer}
    measures:
      orders: {agg: count}
      amount: {agg: sum, column: amount}
"""


def test_cube_query_usage_errors_exit_2_naming_the_choices(client, tmp_path):
    from workbench.testing import orders_catalog, random_orders, write_customers

    data = tmp_path / "data"
    write_customers(data)
    random_orders(3, 100).to_csv(data / "orders.csv", index=False)
    cat = orders_catalog(tmp_path, data)
    cat.write_text(cat.read_text() + ORDERS_CUBE)
    built = runner.invoke(
        app, ["run", "--catalog", str(cat), "--cluster", client.scheduler.address]
    )
    assert built.exit_code == 0, built.output
    query = ["cube", "query", "--catalog", str(cat)]
    ok = runner.invoke(app, [*query, "sales", "--by", "month", "--json"])
    assert ok.exit_code == 0 and sum(r["orders"] for r in json.loads(ok.stdout)["rows"]) == 100
    for args, named in [
        (["salez"], "sales"),
        (["sales", "--measure", "revenue"], "cube 'sales' has no measure ['revenue']"),
        (["sales", "--by", "week"], "month"),
        (["sales", "--where", "customer=C77"], "C77"),
    ]:
        result = runner.invoke(app, [*query, *args])
        assert result.exit_code == 2, (args, result.output)
        assert named in result.output and "Traceback" not in result.output


def test_cli_start_imports_no_dask_dataframe_or_pandas():
    """`workbench --help` and `catalog list` start in under a second because the heavy stack
    (pandas, Dask's collections, xarray, LightGBM, Bokeh) is imported only by the commands that
    use it; benchmarks/cli_startup.py times it."""
    import subprocess
    import sys

    code = (
        "import sys; from workbench.cli import app; "
        "heavy = [m for m in ('pandas', 'dask.dataframe', 'xarray', 'lightgbm', 'bokeh') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
    listed = runner.invoke(app, ["catalog", "list", "--catalog", str(DEMO_CATALOG)])
    assert listed.exit_code == 0 and "flight_delays" in listed.output
