"""The data-quality views without a browser: they show the reports, the quarantine and the lake as
they are on disk, checked against independent reads of the same files."""

from __future__ import annotations

import pandas as pd
import pytest

import workbench as wb
from workbench.testing import orders_catalog, random_orders, write_broken_orders, write_customers
from workbench.validation.report import previous_reports

from .conftest import DEMO_CATALOG


@pytest.fixture
def store(demo):
    from workbench.views import QualityStore

    _, ws, _ = demo
    return QualityStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))


def test_batches_and_reconciliation_match_the_files_and_the_tables(store, demo, raw_tables):
    catalog, ws, _ = demo
    batches = store.batches().set_index("dataset")
    assert set(batches.index) == set(raw_tables)
    for name, raw in raw_tables.items():
        assert batches.loc[name, "landed"] == len(raw), name
        report = previous_reports(ws, name)[-1]
        assert batches.loc[name, "quarantined"] == report["quarantined"]
        assert batches.loc[name, "report"] == f"reports/{name}/{report['batch_id']}.html"
        assert ws.path("reports", "validation", name, f"{report['batch_id']}.html").exists()
    assert batches.loc["airlines", "status"] == "pass"  # nothing quarantined or flagged
    assert batches.loc["flights", "status"] == "warn"  # 7,602 rows quarantined, run went on

    recon = store.reconciliation().set_index("dataset")
    assert recon.balanced.all()
    for name in raw_tables:
        lake = wb.read_table(ws.path("lake", name), columns=["_batch_id"]).compute()
        quarantine = wb.read_table(ws.path("quarantine", name), columns=["_batch_id"]).compute()
        batch = recon.loc[name, "batch"]
        assert recon.loc[name, "in_lake_now"] == (lake._batch_id == batch).sum()
        assert recon.loc[name, "in_quarantine_now"] == (quarantine._batch_id == batch).sum()
        assert recon.loc[name, "ingested"] == len(raw_tables[name])


def test_quarantined_rows_are_filtered_by_whole_reason_codes(store, demo):
    _, ws, _ = demo
    everything = wb.read_table(ws.path("quarantine", "flights")).compute()
    codes = everything._reasons.str.split(";")
    rows, total = store.quarantined("flights", reason="references:dest")
    assert total == codes.map(lambda c: "references:dest" in c).sum() == len(rows)
    assert set(zip(rows._file, rows._line, strict=True)) == set(
        zip(everything._file, everything._line, strict=True)
    )
    assert store.quarantined("flights", reason="references:des")[1] == 0  # a prefix is no code
    capped, total = store.quarantined("flights", limit=100)
    assert len(capped) == 100 and total == len(everything)


@pytest.fixture
def three_batches(tmp_path, client):
    """Orders landed three times: clean (pass), broken files (warn), past the threshold (fail)."""
    data = tmp_path / "data"
    write_customers(data)
    path = orders_catalog(tmp_path, data, load="append")
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    random_orders(1, 40).to_csv(data / "orders_clean.csv", index=False)
    wb.run_pipeline(catalog, ws, ["orders"])
    (data / "orders_clean.csv").unlink()
    expected = write_broken_orders(data)
    wb.run_pipeline(catalog, ws, ["orders"])
    for f in data.glob("orders*.csv"):
        f.unlink()
    # The third delivery: every order names an unknown customer (an appending source lands
    # only files it has not promoted yet, so this batch holds this file alone).
    random_orders(3, 20).assign(customer="C999").to_csv(data / "orders_late.csv", index=False)
    strict = path.read_text().replace("fraction: 1.0", "fraction: 0.5")
    path.write_text(strict)
    with pytest.raises(wb.WorkbenchError):
        wb.run_pipeline(wb.load_catalog(path), ws, ["orders"])
    return path, ws, expected


def test_three_batches_pass_warn_fail_with_rates_over_time(three_batches):
    from workbench.views import QualityDashboard, QualityStore

    path, ws, expected = three_batches
    store = QualityStore(catalog_path=str(path), workspace=str(ws.root))
    orders = store.batches().query("dataset == 'orders'")
    assert orders.status.tolist() == ["pass", "warn", "fail"]
    reports = previous_reports(ws, "orders")
    assert orders.batch.tolist() == [r["batch_id"] for r in reports]

    rates = store.rule_rates("orders")
    second = rates[rates.batch == reports[1]["batch_id"]].set_index("reason")
    wanted = pd.Series(list(expected.values())).value_counts()
    for reason, count in wanted.items():
        assert second.loc[reason, "failed"] == count, reason
        assert second.loc[reason, "rate"] == pytest.approx(count / reports[1]["rows_read"])
    # The failed batch counted its rows but committed nothing.
    recon = store.reconciliation().set_index("batch")
    failed = recon.loc[reports[2]["batch_id"]]
    assert failed.ingested == failed.promoted + failed.quarantined
    assert pd.isna(failed.in_lake_now)

    view = QualityDashboard(store, dataset="orders")
    assert view.param.batch.objects["all batches"] == ""
    view.batch = reports[1]["batch_id"]
    assert len(view.quarantine_table.value) == len(expected)
    assert view.quarantine_table.value._batch_id.eq(reports[1]["batch_id"]).all()
    view.reason = "parse:field_count"
    assert len(view.quarantine_table.value) == wanted["parse:field_count"]
    assert "**2** quarantined rows" in view.quarantine_count.object
