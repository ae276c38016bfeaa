"""A new user's first hour, replayed on a fresh workspace (issue 17): their own catalog with bad
rows, a stores table, a join, a cube and two models; then the fix, the release with --refresh,
a cube query and a prediction with a typo. Every number the CLI shows is computed again here
with pandas from the CSV files."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.ml import aliases
from workbench.testing import MISSING_STORE, add_missing_store, write_shop

runner = CliRunner()
PRODUCTS = {"wine", "beer", "cheese", "bread"}


def expected(data) -> dict:
    """What the workbench should report, from the raw files with pandas only."""
    sales = pd.read_csv(data / "sales.csv", dtype=str)
    stores = set(pd.read_csv(data / "stores.csv", dtype=str)["store_id"])
    price = pd.to_numeric(sales["price"], errors="coerce")
    qty = pd.to_numeric(sales["qty"])
    reasons = {
        "dtype:price": price.isna(),
        "between:qty": ~qty.between(1, 100),
        "in_set:product": ~sales["product"].isin(PRODUCTS),
        "references:store": ~sales["store"].isin(stores),
    }
    bad = pd.concat(reasons, axis=1).any(axis=1)
    kept = sales[~bad].assign(price=price[~bad], qty=qty[~bad])
    return {
        "sales": sales,
        "reasons": {k: int(v.sum()) for k, v in reasons.items()},
        "bad": bad,
        "lines": set((sales.index[bad] + 2).tolist()),  # line 1 is the header
        "kept": kept,
        "pricey_kept": int((price[~bad] > 50).sum()),
        "pricey_quarantined": int((price[bad] > 50).sum()),
    }


def table_row(*cells: str) -> str:
    """A regex for one row of a rich table holding ``cells`` in order."""
    return r"│\s*" + r"\s*│\s*".join(map(re.escape, cells)) + r"\s*│"


def test_first_hour(client, tmp_path):
    catalog = write_shop(tmp_path)
    data = tmp_path / "data"
    given = ["-c", str(catalog)]
    on_cluster = [*given, "--cluster", client.scheduler.address]
    want = expected(data)
    assert sum(want["bad"]) == 30 and want["reasons"]["references:store"] == 5

    # 1. The first run: counts per zone, reasons, warn counts of kept rows only, two models.
    run = runner.invoke(app, ["run", *on_cluster])
    assert run.exit_code == 0, run.output
    out = run.output
    assert re.search(table_row("sales", "2,000", "1,970", "30", f"{want['pricey_kept']:,}"), out)
    for code, rows in want["reasons"].items():
        assert re.search(table_row("sales", code, "quarantined", str(rows)), out), code
    assert f"{want['pricey_quarantined']} quarantined rows failed" in out.replace("\n", " ")
    assert re.search(table_row("sales_enriched", "", "", "", "", "1,970"), out)
    flat = " ".join(out.split())
    # A model worse than its baseline (promo's label flips in the test months) stays candidate.
    assert "candidate: stays a candidate: roc_auc" in flat
    assert "production: first production version: roc_auc" in flat
    ws = wb.Workspace.for_catalog(wb.load_catalog(catalog))
    assert "production" not in aliases(ws, "promo") and aliases(ws, "big_sale")["production"] == 1
    # The demo's names never appear on the user's own catalog; noise is gone.
    assert "flight" not in out and f"CATALOG={catalog}" in flat
    assert "will be ignored" not in out and "distributed.shuffle" not in out

    # 2. What is in quarantine: reason, file:line and the failing value, readable at 80 columns.
    shown = runner.invoke(app, ["quarantine", "show", "sales", *given])
    assert shown.exit_code == 0, shown.output
    lines = {int(n) for n in re.findall(r"sales\.csv:(\d+)", shown.output)}
    assert len(lines) == 20 and lines <= want["lines"]
    assert "price='abc'" in shown.output and f"store='{MISSING_STORE[0]}'" in shown.output
    assert "product='wyne'" in shown.output and "qty='0'" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 80

    # 3. The fix: the missing store is added to stores.csv, but the lake does not have it yet.
    batch = wb.list_batches(ws, "sales")[-1].batch_id
    add_missing_store(tmp_path)
    release = ["quarantine", "release", "sales", "--batch", batch]
    first = runner.invoke(app, [*release, *on_cluster])
    assert first.exit_code == 0, first.output
    flat = " ".join(first.output.split())
    assert "0 rows pass now and are in the lake, 30 stay in quarantine" in flat
    assert "stores: stores.csv changed since its last landing" in flat
    assert f"run `workbench run stores -c {catalog}`" in flat

    # 4. The command it names, then the release again with --refresh.
    assert runner.invoke(app, ["run", "stores", *on_cluster]).exit_code == 0
    second = runner.invoke(app, [*release, "--refresh", *on_cluster])
    assert second.exit_code == 0, second.output
    flat = " ".join(second.output.split())
    assert "5 rows pass now and are in the lake, 25 stay in quarantine" in flat
    assert "1,975 promoted + 25 quarantined = 2,000" in flat
    assert "behind its source" not in flat
    for step in ("curate:sales_enriched", "cube:shop", "features:sale_features"):
        assert step in flat
    assert "promote:sales" not in flat  # the batch is not promoted again

    # 5. The released rows reach the curated table and the cube: sums against pandas.
    want = expected(data)  # stores.csv now has the store: the 5 rows are good
    kept = want["kept"].assign(revenue=lambda d: d.qty * d.price)
    curated = wb.read_dataset(wb.load_catalog(catalog), ws, "sales_enriched").compute()
    assert len(curated) == len(kept) == 1975
    assert (curated["store_name"] == "Store Orchard").sum() == 5
    by_store = runner.invoke(app, ["cube", "query", "shop", "--by", "store", "--json", *given])
    rows = {r["store"]: r for r in json.loads(by_store.stdout)["rows"]}
    sums = kept.groupby("store").agg(revenue=("revenue", "sum"), qty=("qty", "sum"))
    for store, r in sums.iterrows():
        assert rows[store]["revenue_sum"] == pytest.approx(r.revenue)
        assert rows[store]["qty_sum"] == r.qty
    text = runner.invoke(app, ["cube", "query", "shop", "--by", "quarter,store", *given]).output
    orchard = kept[kept.store == MISSING_STORE[0]]
    q1 = orchard[pd.to_datetime(orchard.sold_on).dt.quarter == 1]
    assert re.search(table_row("2024Q1", "S09", "Store Orchard", f"{q1.qty.sum():,}"), text)
    assert "2024-01-01" not in text and not re.search(r"│\s*\d+\.000\s*│", text)

    # 6. The model: show says what it is; a misspelt feature is an error naming the known ones.
    show = runner.invoke(app, ["model", "show", "big_sale", *given])
    assert "aliases: production" in " ".join(show.output.split())
    typo = runner.invoke(app, ["model", "predict", "big_sale", "product=wine", "prize=3", *given])
    assert typo.exit_code == 2
    assert "no feature 'prize'; its features are product, store, qty" in typo.output
    ok = runner.invoke(app, ["model", "predict", "big_sale", "product=wine", "qty=3", *given])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["missing"] == ["store"]
