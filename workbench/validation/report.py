"""Validation reports: JSON for machines, one self-contained HTML page for people.

The HTML page needs nothing but itself: its charts are inline SVG (a few kilobytes, no
script; Bokeh's inlined JavaScript made a report of eight rows weigh 3.9 MB). It shows per-rule
failure counts and rates, the dataset rules, sample failing rows, and the trend over batches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from workbench.io.workspace import Workspace, write_json_atomic
from workbench.validation.svg import bar_chart, line_chart

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("workbench.validation", "templates"),
    # "html.j2" too: with only "html", the template (validation.html.j2) was not escaped and a
    # sample row's text went into the page as markup.
    autoescape=jinja2.select_autoescape(["html", "html.j2"]),
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


def _chart(table: pd.DataFrame) -> str:
    failing = table[table.failed > 0]
    if failing.empty:
        return ""
    pairs = zip(failing.failed, failing.rate, strict=True)
    notes = [f"{n:,} {'row' if n == 1 else 'rows'} ({100 * r:.3f}%)" for n, r in pairs]
    return bar_chart(
        "Failing rows per reason", failing.reason.tolist(), failing.failed.tolist(), notes
    )


def _trend_chart(trend: list[dict[str, Any]]) -> str:
    if len(trend) < 2:
        return ""
    shares = [100 * r["quarantined"] / max(r["rows_read"], 1) for r in trend]
    batches = [r["batch_id"].split("-")[0] for r in trend]  # the time part; the table has ids
    return line_chart("Quarantined share by batch (%)", batches, shares, unit="%")


def render_html(body: dict[str, Any], trend: list[dict[str, Any]]) -> str:
    table = rule_table(body)
    samples = pd.DataFrame(body.get("samples", []))
    return _ENV.get_template("validation.html.j2").render(
        r=body,
        rules=table.to_dict("records"),
        findings=body["findings"],
        samples=samples.fillna("").to_dict("records"),
        sample_columns=list(samples.columns),
        trend=trend,
        reasons_chart=_chart(table),
        trend_chart=_trend_chart(trend),
    )
