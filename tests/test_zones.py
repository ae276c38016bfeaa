"""Zones in depth: broken files lose nothing, promotion is idempotent, release, retention."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

import workbench as wb
from workbench.io.delta import open_table
from workbench.testing import (
    BROKEN_FILES,
    data_rows,
    orders_catalog,
    random_orders,
    write_broken_orders,
    write_customers,
)
from workbench.validation.report import previous_reports
from workbench.zones.quarantine import batch_balance, release_batch
from workbench.zones.retention import gc_landing


@pytest.fixture
def broken(tmp_path, client):
    data = tmp_path / "data"
    write_customers(data)
    expected = write_broken_orders(data)
    catalog = wb.load_catalog(orders_catalog(tmp_path, data))
    ws = wb.Workspace.for_catalog(catalog)
    result = wb.run_pipeline(catalog, ws, ["orders"])
    return catalog, ws, result, expected


def test_broken_files_lose_nothing_and_every_bad_row_has_its_reason(broken):
    catalog, ws, result, expected = broken
    promote = next(s for s in result.steps if s.step == "promote:orders")
    total = sum(data_rows(name) for name in BROKEN_FILES)
    assert promote.rows_in == total
    assert promote.rows_out + promote.details["quarantined"] == total
    assert promote.details["quarantined"] == len(expected)
    q = wb.read_table(ws.path("quarantine", "orders")).compute()
    got = {(f, line): r for f, line, r in zip(q._file, q._line, q._reasons, strict=True)}
    assert got == expected
    # The original text of rows that could not be parsed is kept verbatim.
    enc = q[q._reasons == "parse:encoding"]
    assert enc._text.iloc[0].startswith("15,C")
    quoting = q[q._reasons == "parse:quoting"]
    assert quoting._text.iloc[0] == '8,"C2,2.0,2024-01-04T10:00:00Z'


def test_promoted_rows_are_typed_and_traceable(broken):
    catalog, ws, _, expected = broken
    lake = wb.read_dataset(catalog, ws, "orders").compute()
    assert str(lake.placed_at.dtype).startswith("datetime64")
    assert lake.order_id.dtype.name == "Int64"
    keys = set(zip(lake._file, lake._line, strict=True))
    assert not keys & set(expected)
    assert (lake.amount >= 0).all() and lake.customer.isin([f"C{i}" for i in range(5)]).all()


def test_report_lists_dataset_findings_and_empty_file(broken):
    _, ws, _, _ = broken
    report = previous_reports(ws, "orders")[-1]
    findings = {f["rule"]: f for f in report["findings"]}
    assert findings["reconciliation"]["passed"]
    assert not findings["empty_file"]["passed"]
    assert "orders_empty.csv" in findings["empty_file"]["detail"]
    assert "missing columns ['amount']" in findings["schema_drift"]["detail"]
    html = ws.path("reports", "validation", "orders", f"{report['batch_id']}.html").read_text()
    assert "parse:encoding" in html and "Sample failing rows" in html


def test_report_is_small_and_draws_one_bar_per_failing_reason(broken):
    _, ws, _, _ = broken
    report = previous_reports(ws, "orders")[-1]
    path = ws.path("reports", "validation", "orders", f"{report['batch_id']}.html")
    html = path.read_text()
    # Self-contained without a JavaScript library: Bokeh inlined made it 3.9 MB.
    assert path.stat().st_size < 100_000 and "<script" not in html
    failing = {code: r["rows"] for code, r in report["reasons"].items() if r["rows"]}
    assert len(failing) >= 3
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", html, re.S).group(0))
    bars = svg.findall("{http://www.w3.org/2000/svg}g")
    hover = [b.find("{http://www.w3.org/2000/svg}title").text for b in bars]
    assert sorted(hover) == sorted(
        f"{code}: {rows:,} row{'s' if rows > 1 else ''} ({100 * rows / report['rows_read']:.3f}%)"
        for code, rows in failing.items()
    )
    widths = {
        t.split(": ")[0]: float(b.find("{http://www.w3.org/2000/svg}rect").get("width"))
        for t, b in zip(hover, bars, strict=True)
    }
    most = max(failing, key=failing.get)
    assert widths[most] == max(widths.values())


def test_promoting_the_same_batch_twice_does_not_duplicate(broken):
    catalog, ws, _, _ = broken
    batch = wb.list_batches(ws, "orders")[0]
    before = wb.read_dataset(catalog, ws, "orders").compute()
    wb.promote_batch(catalog, ws, "orders", batch)
    after = wb.read_dataset(catalog, ws, "orders").compute()
    assert len(after) == len(before)
    q = wb.read_table(ws.path("quarantine", "orders")).compute()
    assert len(q) == len(set(zip(q._file, q._line, strict=True)))


def test_append_load_keeps_batches_and_replaces_only_its_own(tmp_path, client):
    data = tmp_path / "data"
    write_customers(data)
    catalog = wb.load_catalog(orders_catalog(tmp_path, data, load="append"))
    ws = wb.Workspace.for_catalog(catalog)
    first, second = random_orders(1, 50), random_orders(2, 30)
    second["order_id"] += 1000
    first.to_csv(data / "orders1.csv", index=False)
    wb.run_pipeline(catalog, ws, ["orders"])
    (data / "orders1.csv").unlink()
    second.to_csv(data / "orders2.csv", index=False)
    wb.run_pipeline(catalog, ws, ["orders"])
    assert len(wb.read_dataset(catalog, ws, "orders")) == 80
    batch = wb.list_batches(ws, "orders")[0]
    wb.promote_batch(catalog, ws, "orders", batch)  # again: same rows, no duplicates
    lake = wb.read_dataset(catalog, ws, "orders").compute()
    assert len(lake) == 80 and lake.order_id.is_unique
    assert open_table(ws.path("lake", "orders"), 1).version() == 1  # time travel still works
    assert len(wb.read_dataset(catalog, ws, "orders", version=0)) == 50


def test_release_after_the_rule_is_fixed(broken, tmp_path):
    catalog, ws, _, expected = broken
    batch = wb.list_batches(ws, "orders")[0].batch_id
    landed = sum(data_rows(name) for name in BROKEN_FILES)
    assert batch_balance(ws, "orders", batch)["total"] == landed
    # The owner decides negative amounts are refunds: relax the rule, release the batch.
    fixed_path = catalog.path.parent / "fixed.yaml"
    fixed_path.write_text(
        catalog.path.read_text().replace(
            "{rule: min, column: amount, value: 0}", "{rule: min, column: amount, value: -100}"
        )
    )
    fixed = wb.load_catalog(fixed_path)
    released = release_batch(fixed, ws, "orders", batch)
    assert released.released == 1 and released.still_quarantined == len(expected) - 1
    lake = wb.read_dataset(fixed, ws, "orders").compute()
    assert (lake.order_id == 13).sum() == 1
    balance = batch_balance(ws, "orders", batch)
    assert balance["total"] == landed and balance["quarantined"] == len(expected) - 1
    again = release_batch(fixed, ws, "orders", batch)  # idempotent
    assert (
        again.released == 0
        or (wb.read_dataset(fixed, ws, "orders").compute().order_id == 13).sum() == 1
    )
    assert batch_balance(ws, "orders", batch) == balance


def test_landing_gc_keeps_unpromoted_and_young_batches(tmp_path, client):
    data = tmp_path / "data"
    write_customers(data)
    random_orders(3, 10).to_csv(data / "orders.csv", index=False)
    catalog = wb.load_catalog(orders_catalog(tmp_path, data))
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, ["orders"])
    (data / "orders.csv").write_text("order_id,customer,amount,placed_at\n1,C1,1,2024-01-01\n")
    wb.land(ws, "orders", [data / "orders.csv"])  # landed, never promoted
    now = dt.datetime.now(dt.UTC)
    assert gc_landing(catalog, ws, older_than="30d", datasets=["orders"], now=now)[0].removed == ()
    later = gc_landing(
        catalog, ws, older_than="30d", datasets=["orders"], now=now + dt.timedelta(days=31)
    )[0]
    assert len(later.removed) == 1 and len(later.kept_unpromoted) == 1
    assert len(wb.list_batches(ws, "orders")) == 1
    assert pd.Timestamp(wb.list_batches(ws, "orders")[0].landed_at) <= pd.Timestamp(now)


def test_curated_join_by_shuffle_equals_the_broadcast_join(demo, tmp_path):
    """Right tables too big to broadcast go through Dask's hash join: same rows either way."""
    import dask

    from workbench.io.delta import read_table, table_rows, write_table
    from workbench.zones.curated import can_broadcast

    catalog, ws, _ = demo
    other = wb.Workspace(tmp_path)
    for name in ("flights", "airlines", "airports", "planes", "weather"):
        write_table(read_table(ws.path("lake", name)), other.path("lake", name))
    planes = next(j for j in catalog.datasets["flights_enriched"].joins if j.dataset == "planes")
    rows = table_rows(other.path("lake", "planes"))
    assert can_broadcast(catalog, planes, rows)  # auto: 3,322 rows fit any worker
    with dask.config.set({"workbench.broadcast-memory-fraction": 1e-9}):
        assert not can_broadcast(catalog, planes, rows)
    with dask.config.set({"workbench.broadcast-max-rows": 10}):
        built = wb.build_curated(catalog, other, "flights_enriched")
    assert built.broadcast == ()
    key = ["year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"]
    got = read_table(other.path("curated", "flights_enriched")).compute()
    want = read_table(ws.path("curated", "flights_enriched")).compute()
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want[got.columns], check_dtype=False)


ORDERS_WITH_MISSING = (
    "order_id,customer,amount,placed_at\n"
    "1,C1,N/A,2024-01-01T10:00:00Z\n"
    "2,C2,N/A,2024-01-02T10:00:00Z\n"
    "3,C3,,2024-01-03T10:00:00Z\n"
    "4,C9,N/A,2024-01-04T10:00:00Z\n"  # an unknown customer: quarantined
    "5,C4,-,2024-01-05T10:00:00Z\n"
    "6,C0,7.5,2024-01-06T10:00:00Z\n"
)


def promote_with_missing(tmp_path, amount: str):
    data = tmp_path / "data"
    write_customers(data)
    (data / "orders1.csv").write_text(ORDERS_WITH_MISSING)
    path = orders_catalog(tmp_path, data)
    path.write_text(path.read_text().replace("amount: float", f"amount: {amount}"))
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, ["orders"])
    lake = wb.read_dataset(catalog, ws, "orders").compute().set_index("order_id")
    q = wb.read_table(ws.path("quarantine", "orders")).compute().set_index("order_id")
    report = previous_reports(ws, "orders")[-1]
    html = ws.path("reports", "validation", "orders", f"{report['batch_id']}.html").read_text()
    return lake, q, report, html


def test_missing_value_texts_become_null_and_the_report_counts_them(tmp_path, client):
    lake, q, report, html = promote_with_missing(tmp_path, "float")
    assert lake.loc[[1, 2, 3], "amount"].isna().all() and lake.loc[6, "amount"] == 7.5
    # Counted over promoted rows; the quarantined row keeps the text as it was written.
    assert report["missing"] == {"amount": {"N/A": 2, "": 1}}
    assert q.loc["4", "amount"] == "N/A" and q.loc["5", "amount"] == "-"
    assert "<code>amount</code>: 2 values were &#39;N/A&#39; and are null" in html
    assert "<code>amount</code>: 1 value was empty and is null" in html


def test_a_column_can_give_its_own_missing_value_texts(tmp_path, client):
    lake, q, report, _ = promote_with_missing(tmp_path, '{type: float, na_values: ["-"]}')
    # For amount only "-" is missing: "N/A" and an empty field are values that do not parse.
    assert pd.isna(lake.loc[5, "amount"])
    assert report["missing"] == {"amount": {"-": 1}}
    assert q.loc[["1", "2", "3"], "amount"].tolist() == ["N/A", "N/A", ""]
    assert set(q.loc[["1", "2", "3"], "_reasons"]) == {"dtype:amount"}
