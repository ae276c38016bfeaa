"""Catalog expressions on the flights table: pandas.eval against workbench.catalog.expressions.

Run: PYTHONPATH=. .venv/bin/python benchmarks/expressions.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import workbench as wb
from workbench.catalog.expressions import evaluate, parse_expression
from workbench.io import resolve_source

# Every expression form of the demo catalog.
EXPRESSIONS = [
    "arr_delay.notna() | dep_time.isna()",
    "dep_delay > 15",
    "arr_delay > 15",
    "year - plane_year",
    "dep_delay > 120",
    "not cancelled",
]


def median_ms(fn, repeat: int = 15) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    catalog = wb.load_catalog("data_catalog.yaml")
    flights = pd.read_csv(resolve_source(catalog.datasets["flights"].source.path)[0])
    flights = flights.assign(cancelled=flights.dep_time.isna(), plane_year=flights.year - 10.0)
    print(f"{len(flights):,} rows")
    totals = np.zeros(2)
    for expr in EXPRESSIONS:
        both = np.array(
            [
                median_ms(lambda e=expr: flights.eval(e)),
                median_ms(lambda e=expr: evaluate(e, flights)),
            ]
        )
        totals += both
        print(f"{expr:38s} pandas.eval {both[0]:6.2f} ms  workbench {both[1]:6.2f} ms")
    print(f"{'all':38s} pandas.eval {totals[0]:6.2f} ms  workbench {totals[1]:6.2f} ms")
    parse_expression.cache_clear()
    start = time.perf_counter()
    for expr in EXPRESSIONS:
        parse_expression(expr)
    print(f"parsing all, uncached: {(time.perf_counter() - start) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
