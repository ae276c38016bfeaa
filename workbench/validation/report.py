"""Validation reports: JSON for machines, one self-contained HTML page for people.

The HTML page embeds Bokeh's JavaScript (no network needed to open it) and shows per-rule
failure counts and rates, the dataset rules, sample failing rows, and the trend over batches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from bokeh.embed import components
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure
from bokeh.resources import INLINE

from workbench.io.workspace import Workspace, write_json_atomic

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("workbench.validation", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def report_dir(ws: Workspace, dataset: str) -> Path:
    return ws.path("reports", "validation", dataset)


def previous_reports(ws: Workspace, dataset: str) -> list[dict[str, Any]]:
    """Earlier reports of the dataset, oldest first."""
    folder = report_dir(ws, dataset)
    if not folder.exists():
        return []
    reports = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return sorted(reports, key=lambda r: r["checked_at"])


def write_report(
    ws: Workspace, result: Any, samples: pd.DataFrame, history: list[dict[str, Any]]
) -> Path:
    """Write ``<batch>.json`` and ``<batch>.html``; returns the HTML path."""
    folder = report_dir(ws, result.dataset)
    body = result.to_dict()
    body["samples"] = json.loads(samples.head(200).to_json(orient="records"))
    write_json_atomic(folder / f"{result.batch_id}.json", body)
    trend = [r for r in history if r["batch_id"] != result.batch_id] + [body]
    html = render_html(body, trend)
    path = folder / f"{result.batch_id}.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def rule_table(body: dict[str, Any]) -> pd.DataFrame:
    """One row per reason: severity, failing rows and rate over the rows read."""
    rows = max(body["rows_read"], 1)
    table = pd.DataFrame(
        [
            {
                "reason": code,
                "severity": r["severity"],
                "failed": r["rows"],
                "rate": r["rows"] / rows,
            }
            for code, r in body["reasons"].items()
        ]
    )
    return table.sort_values(["failed", "reason"], ascending=[False, True], ignore_index=True)


def _chart(table: pd.DataFrame):
    failing = table[table.failed > 0]
    if failing.empty:
        return None
    source = ColumnDataSource(failing.assign(pct=failing.rate * 100))
    plot = figure(
        y_range=list(reversed(failing.reason.tolist())),
        height=40 + 28 * len(failing),
        width=760,
        title="Failing rows per reason",
        toolbar_location=None,
        x_axis_label="rows",
    )
    plot.hbar(y="reason", right="failed", height=0.7, source=source, color="#c0504d")
    plot.add_tools(
        HoverTool(
            tooltips=[("reason", "@reason"), ("rows", "@failed{0,0}"), ("rate", "@pct{0.000}%")]
        )
    )
    return plot


def _trend_chart(trend: list[dict[str, Any]]):
    if len(trend) < 2:
        return None
    frame = pd.DataFrame(
        {
            "batch": [r["batch_id"] for r in trend],
            "pct": [100 * r["quarantined"] / max(r["rows_read"], 1) for r in trend],
        }
    )
    plot = figure(
        x_range=frame.batch.tolist(),
        height=260,
        width=760,
        toolbar_location=None,
        title="Quarantined share by batch (%)",
    )
    plot.line(x="batch", y="pct", source=ColumnDataSource(frame), line_width=2)
    plot.scatter(x="batch", y="pct", source=ColumnDataSource(frame), size=8)
    plot.xaxis.major_label_orientation = 0.8
    return plot


def render_html(body: dict[str, Any], trend: list[dict[str, Any]]) -> str:
    table = rule_table(body)
    charts = [c for c in (_chart(table), _trend_chart(trend)) if c is not None]
    script, divs = components(charts) if charts else ("", [])
    samples = pd.DataFrame(body.get("samples", []))
    return _ENV.get_template("validation.html.j2").render(
        r=body,
        rules=table.to_dict("records"),
        findings=body["findings"],
        samples=samples.fillna("").to_dict("records"),
        sample_columns=list(samples.columns),
        trend=trend,
        bokeh_resources=INLINE.render(),
        script=script,
        divs=divs,
    )
