"""``workbench model monitor``: drift of a window of rows from a model's training data, written
as JSON and as one self-contained HTML page under ``reports/drift/<model>/``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import jinja2
import pandas as pd
from bokeh.embed import components
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from bokeh.resources import INLINE

from workbench.catalog.models import Catalog
from workbench.errors import CatalogError
from workbench.io.workspace import Workspace, write_json_atomic
from workbench.ml.drift import compare_window, drift_dir
from workbench.ml.features import SPLIT, read_features
from workbench.ml.registry import load_predictor
from workbench.ml.train import model_spec

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("workbench.ml", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def default_window(
    catalog: Catalog, ws: Workspace, name: str, start: str | None, end: str | None
) -> tuple[dd.DataFrame, str]:
    """Rows of the feature set's current table between ``start`` and ``end`` on the split's
    time column, or its test rows (the most recent period) when no range is given."""
    fs_name = model_spec(catalog, name).feature_set
    fs = catalog.features[fs_name]
    frame = read_features(ws, fs_name)
    if start is None and end is None:
        return frame[frame[SPLIT] == "test"], "test rows of the current feature table"
    column = fs.split.column
    if column is None:
        raise CatalogError(
            f"features.{fs_name}: --from/--to need a time split column; this feature set "
            "splits at random, so monitor its test rows (no range) instead."
        )
    window = frame.map_partitions(_in_range, column, start, end, meta=frame._meta)
    return window, f"{column} in [{start or '...'}, {end or '...'})"


def _in_range(df: pd.DataFrame, column: str, start: str | None, end: str | None) -> pd.DataFrame:
    when = pd.to_datetime(df[column])
    tz = getattr(when.dt, "tz", None)
    keep = when.notna()
    if start is not None:
        keep &= when >= pd.Timestamp(start, tz=tz)
    if end is not None:
        keep &= when < pd.Timestamp(end, tz=tz)
    return df[keep]


def monitor_model(
    catalog: Catalog,
    ws: Workspace,
    name: str,
    *,
    window: dd.DataFrame | None = None,
    start: str | None = None,
    end: str | None = None,
    alias: str | None = "production",
    version: int | None = None,
    label: str = "",
    write: bool = True,
) -> dict[str, Any]:
    """Compare a window of rows with the model's training data; write the JSON and HTML report.

    ``window`` is a frame of raw feature rows (with the label when known); by default the rows
    of the current feature table in ``[start, end)`` or its test rows. The result has
    ``alert`` (True when a threshold of the catalog's ``monitor:`` is passed), ``drifted``,
    per-feature statistics, prediction drift and performance.

    Examples
    --------
    >>> report = monitor_model(catalog, ws, "departure_delay", start="2013-12-01")  # doctest: +SKIP
    >>> report["alert"], report["drifted"]  # doctest: +SKIP
    """
    spec = model_spec(catalog, name)
    predictor = load_predictor(ws, name, version, alias=None if version else alias)
    if window is None:
        window, label = default_window(catalog, ws, name, start, end)
    report = compare_window(predictor, predictor.fit_info, window, spec.monitor)
    report["window"] = label or "rows given by the caller"
    report["start"], report["end"] = start, end  # the dashboards order windows by these
    if write:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        folder = drift_dir(ws, name)
        report["json"] = str(folder / f"{stamp}.json")
        report["html"] = str(folder / f"{stamp}.html")
        write_json_atomic(Path(report["json"]), report)
        html = Path(report["html"])
        html.with_suffix(".tmp").write_text(render_drift_html(report), encoding="utf-8")
        html.with_suffix(".tmp").replace(html)
    return report


PERIODS = {"day": "D", "week": "W-MON", "month": "MS", "quarter": "QS"}


def period_windows(start: str, end: str, every: str) -> list[tuple[str, str]]:
    """``[start, end)`` cut at each calendar ``every`` (day, week from Monday, month, quarter).

    Examples
    --------
    >>> period_windows("2013-11-15", "2014-01-01", "month")
    [('2013-11-15', '2013-12-01'), ('2013-12-01', '2014-01-01')]
    """
    if every not in PERIODS:
        raise CatalogError(f"--every {every!r}: choose one of {', '.join(PERIODS)}.")
    first, stop = pd.Timestamp(start), pd.Timestamp(end)
    if stop <= first:
        raise CatalogError(f"--from {start} --to {end}: the end must come after the start.")
    cuts = pd.date_range(first, stop, freq=PERIODS[every])
    edges = sorted({first, stop, *cuts})
    days = [f"{t:%Y-%m-%d}" for t in edges]
    return list(zip(days[:-1], days[1:], strict=True))


def monitor_periods(
    catalog: Catalog,
    ws: Workspace,
    name: str,
    *,
    start: str,
    end: str,
    every: str = "month",
    alias: str | None = "production",
    version: int | None = None,
) -> list[dict[str, Any]]:
    """One drift report per period of ``[start, end)``, each written like
    :func:`monitor_model`'s: the history the models dashboard draws over time.

    Examples
    --------
    >>> reports = monitor_periods(catalog, ws, "departure_delay", start="2013-09-01",
    ...                           end="2014-01-01")  # doctest: +SKIP
    >>> [r["start"] for r in reports]  # doctest: +SKIP
    ['2013-09-01', '2013-10-01', '2013-11-01', '2013-12-01']
    """
    return [
        monitor_model(catalog, ws, name, start=a, end=b, alias=alias, version=version)
        for a, b in period_windows(start, end, every)
    ]


def _psi_chart(report: dict[str, Any]):
    frame = pd.DataFrame(report["features"])
    frame["color"] = frame["drifted"].map({True: "#c0504d", False: "#4f81bd"})
    plot = figure(
        y_range=list(reversed(frame["feature"].tolist())),
        height=60 + 22 * len(frame),
        width=760,
        title="PSI per feature (red: drifted)",
        toolbar_location=None,
        x_axis_label="PSI",
    )
    plot.hbar(y="feature", right="psi", height=0.7, color="color", source=ColumnDataSource(frame))
    plot.ray(x=[report["thresholds"]["psi"]], y=[0], length=0, angle=1.5708, color="#888")
    return plot


def render_drift_html(report: dict[str, Any]) -> str:
    """The report as one HTML page with Bokeh's JavaScript inline (opens offline)."""
    script, divs = components([_psi_chart(report)])
    # INLINE.render() also links extension files by relative URL once Panel is imported in the
    # process; the raw JavaScript keeps the page whole.
    resources = "".join(f"<script>{js}</script>" for js in INLINE.js_raw)
    resources += "".join(f"<style>{css}</style>" for css in INLINE.css_raw)
    return _ENV.get_template("drift.html.j2").render(
        r=report, bokeh_resources=resources, script=script, divs=divs
    )
