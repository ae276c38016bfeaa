"""The retraining policy: does ``workbench run`` need to train a model again, and why."""

from __future__ import annotations

import datetime as dt
import re

from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.ml.features import feature_info
from workbench.ml.registry import list_versions, model_metadata
from workbench.ml.train import model_spec

_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def _period(text: str) -> dt.timedelta:
    number, unit = re.fullmatch(r"(\d+)\s*([hdw])", text).groups()
    return dt.timedelta(**{_UNITS[unit]: int(number)})


def retrain_reasons(catalog: Catalog, ws: Workspace, name: str) -> list[str]:
    """Why the model should be retrained now under its catalog ``retrain:`` policy (empty: it
    should not). New data is judged against the newest registered version; drift, decay and
    age against production (else the newest)."""
    spec = model_spec(catalog, name)
    versions = list_versions(ws, name)
    if not versions:
        return ["no registered version yet"]
    meta = model_metadata(ws, name)
    policy, reasons = spec.retrain, []
    current = feature_info(ws, spec.feature_set)["version"]
    trained_on = versions[-1]["feature_version"]  # the newest version saw the newest data
    if "new_data" in policy.when and current != trained_on:
        reasons.append(f"new data: features v{current}, the model saw v{trained_on}")
    if "schedule" in policy.when:
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(meta["registered_at"])
        if age > _period(policy.every):
            reasons.append(f"schedule: the model is older than {policy.every}")
    if {"drift", "performance"} & set(policy.when):
        from workbench.ml.monitor import monitor_model

        report = monitor_model(catalog, ws, name, version=meta["version"])
        if "drift" in policy.when and (report["drifted"] or report["prediction"]["drifted"]):
            reasons.append(f"drift: {', '.join(report['drifted']) or 'predictions'}")
        if "performance" in policy.when and (report["performance"] or {}).get("decayed"):
            reasons.append(f"performance: {report['alerts'][-1]}")
    return reasons
