"""Property: whatever the defects, rows landed = promoted + quarantined, and promoted rows obey
every error rule. Random tables with random defects go through the real pipeline."""

from __future__ import annotations

import shutil

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.testing import orders_catalog, random_orders, write_customers

DEFECTS = [
    "none",
    "null_customer",
    "bad_amount",
    "negative",
    "unknown_customer",
    "bad_time",
    "short_row",
    "dup_id",
    "blank_line",
]


def _render(clean: pd.DataFrame, defects: list[str]) -> str:
    lines = ["order_id,customer,amount,placed_at"]
    for (_, row), defect in zip(clean.iterrows(), defects, strict=True):
        oid, cust, amount, placed = row.order_id, row.customer, row.amount, row.placed_at
        if defect == "null_customer":
            cust = ""
        elif defect == "bad_amount":
            amount = "n/a?"
        elif defect == "negative":
            amount = -abs(amount) - 1
        elif defect == "unknown_customer":
            cust = "C999"
        elif defect == "bad_time":
            placed = "someday"
        elif defect == "dup_id":
            oid = 1
        if defect == "short_row":
            lines.append(f"{oid},{cust}")
            continue
        lines.append(f"{oid},{cust},{amount},{placed}")
        if defect == "blank_line":
            lines.append("")
    return "\n".join(lines) + "\n"


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), data=st.data())
def test_rows_always_add_up(client, tmp_path_factory, seed, n, data):
    folder = tmp_path_factory.mktemp("prop")
    src = folder / "data"
    write_customers(src)
    defects = data.draw(st.lists(st.sampled_from(DEFECTS), min_size=n, max_size=n))
    (src / "orders.csv").write_text(_render(random_orders(seed, n), defects))
    catalog = wb.load_catalog(orders_catalog(folder, src))
    ws = wb.Workspace.for_catalog(catalog)
    result = wb.run_pipeline(catalog, ws, ["orders"])
    step = next(s for s in result.steps if s.step == "promote:orders")
    assert step.rows_in == n
    assert step.rows_out + step.details["quarantined"] == n
    lake = wb.read_dataset(catalog, ws, "orders").compute()
    assert len(lake) == step.rows_out
    if len(lake):
        assert lake.order_id.notna().all() and lake.customer.notna().all()
        assert (lake.amount.dropna() >= 0).all()
        assert lake.customer.isin([f"C{i}" for i in range(5)]).all()
        assert lake.order_id.is_unique
    expected_bad = sum(d not in ("none", "blank_line") for d in defects)
    dup = defects.count("dup_id") + (1 if "dup_id" in defects and defects[0] == "none" else 0)
    assert step.details["quarantined"] >= expected_bad - dup
    shutil.rmtree(folder)
