"""The pipeline's steps after training: batch scoring, and drift monitoring over time windows.

``workbench run`` ends a model's chain with ``score:<model>`` (predictions of the feature table
by the production model) and ``monitor:<model>`` (one drift report per ``monitor.every`` window
after the training rows), so the models dashboard has predictions and a drift history to show.
Both are skipped as ``reused`` when their last output was made by the same model version from the
same feature version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from workbench.catalog.models import Catalog
from workbench.io.delta import commit_info, growth_since, open_table
from workbench.io.workspace import Workspace
from workbench.ml.drift import drift_reports
from workbench.ml.features import feature_path, read_features
from workbench.ml.monitor import monitor_model, period_windows
from workbench.ml.registry import resolve_version
from workbench.ml.score import FEATURE_VERSION, MODEL_VERSION, predictions_path, score_batch
from workbench.ml.train import model_spec


def _current(catalog: Catalog, ws: Workspace, name: str) -> tuple[int, int]:
    """The version scoring uses (production, else the newest) and the feature table's version."""
    feature_set = model_spec(catalog, name).feature_set
    return resolve_version(ws, name), open_table(feature_path(ws, feature_set)).version()


def score_step(
    catalog: Catalog, ws: Workspace, name: str, *, force: bool = False, incremental: bool = False
) -> dict[str, Any]:
    """Score the feature table with the production model, unless that was the last thing done.

    With ``incremental``, when the predictions came from the same model version and the
    feature table only gained rows since, only those rows are scored and appended (a row's
    score depends on its own features alone)."""
    version, features = _current(catalog, ws, name)
    path = predictions_path(ws, name)
    growth = None
    if (path / "_delta_log").exists() and not force:
        info = commit_info(path)
        scored = info.get(FEATURE_VERSION)
        same_model = str(info.get(MODEL_VERSION)) == str(version)
        if same_model and str(scored) == str(features):
            return {"reused": True, "model_version": version}
        if incremental and same_model and scored is not None:
            feature_set = model_spec(catalog, name).feature_set
            growth = growth_since(feature_path(ws, feature_set), int(scored))
    result = score_batch(catalog, ws, name, version=version, appended=growth)
    return {
        "reused": False,
        "rows": result.rows,
        "model_version": result.model_version,
        "predictions_version": result.predictions_version,
        "engine": result.engine,
        "mode": "full" if growth is None else f"appended {result.rows} rows",
    }


def monitor_windows(catalog: Catalog, ws: Workspace, name: str) -> list[tuple[str, str]] | None:
    """``[start, end)`` windows from the first row after training to the last row, one per
    ``monitor.every``; None when the split is not by time (the test rows are then one window)."""
    spec = model_spec(catalog, name)
    split = catalog.features[spec.feature_set].split
    start = split.validation_from or split.test_from
    if split.kind != "time" or split.column is None or start is None:
        return None
    last = read_features(ws, spec.feature_set, columns=[split.column])[split.column].max()
    end = (dt.date.fromisoformat(str(last.compute())[:10]) + dt.timedelta(days=1)).isoformat()
    return period_windows(start.isoformat(), end, spec.monitor.every)


def monitor_step(
    catalog: Catalog, ws: Workspace, name: str, *, force: bool = False
) -> dict[str, Any]:
    """Drift reports per window for the production model, unless they exist for this version
    (or ``force``)."""
    version, _ = _current(catalog, ws, name)
    windows = monitor_windows(catalog, ws, name)
    earlier = [] if force else drift_reports(ws, name)
    done = {(r.get("start"), r.get("end")) for r in earlier if r["version"] == version}
    wanted = set(windows) if windows is not None else {(None, None)}
    if wanted <= done:
        return {"reused": True, "model_version": version, "windows": len(wanted)}
    reports = [
        monitor_model(catalog, ws, name, start=start, end=end, version=version)
        for start, end in (windows or [(None, None)])
    ]
    return {
        "reused": False,
        "model_version": version,
        "windows": len(reports),
        "alerts": {str(r.get("start") or "test rows"): r["alerts"] for r in reports if r["alert"]},
    }
