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
