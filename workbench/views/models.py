"""The models dashboard's data: registry, metrics, curves, drift over time, what-if scores.

:class:`ModelStore` is the only place that knows how models are stored; it reads through the
public functions of ``workbench.ml`` (``list_versions``, ``resolve_version``, ``model_metadata``,
``load_predictor``, ``read_features``, ``drift_reports``). The model a dashboard scores with is
:meth:`ModelStore.current`: the ``production`` alias, else the newest version. Nothing here scores
test rows again: curves and drift come from what training and monitoring recorded.
"""

from __future__ import annotations

import pandas as pd
import panel as pn

from workbench.ml import (
    Predictor,
    drift_reports,
    list_versions,
    load_predictor,
    model_metadata,
    read_features,
    resolve_version,
)
from workbench.views.source import (
    CatalogSource,
    open_workspace,
)

METRICS = ["roc_auc", "log_loss", "accuracy", "baseline_accuracy", "baseline_log_loss"]


@pn.cache(max_items=8)
def _feature_defaults(
    catalog_path: str, workspace: str | None, feature_set: str, version: int, numeric: tuple
) -> dict[str, float]:
    ws = open_workspace(catalog_path, workspace)
    frame = read_features(ws, feature_set, version=version, columns=list(numeric)).compute()
    return {c: float(pd.to_numeric(frame[c], errors="coerce").median()) for c in numeric}


@pn.cache(max_items=32)
def _metadata(catalog_path: str, workspace: str | None, name: str, version: int) -> dict:
    return model_metadata(open_workspace(catalog_path, workspace), name, version)


@pn.cache(max_items=8)
def _load(catalog_path: str, workspace: str | None, name: str, version: int) -> Predictor:
    # Versions are immutable, so one load per version serves every session.
    return load_predictor(open_workspace(catalog_path, workspace), name, version)


_DRIFT_COLUMNS = {
    "window": "str",
    "rows": "int64",
    "feature": "str",
    "psi": "float64",
    "drifted": "bool",
    "ignored": "bool",
    "threshold": "float64",
}


def window_label(report: dict) -> str:
    """A monitoring window's name on a chart axis: ``2013-09`` for a calendar month,
    ``2013-09-01 to 2013-09-15``, ``from 2013-12-01``, or the check time of an undated window."""
    start, end = report.get("start"), report.get("end")
    if start and end:
        first, stop = pd.Timestamp(start), pd.Timestamp(end)
        if first.day == 1 and stop == first + pd.offsets.MonthBegin(1):
            return f"{first:%Y-%m}"
        return f"{start} to {end}"
    if start or end:
        return f"from {start}" if start else f"until {end}"
    return "checked " + report["checked_at"][:16].replace("T", " ")


class ModelStore(CatalogSource):
    """Registered models of one catalog and workspace."""

    def models(self) -> list[str]:
        return list(self.catalog.models)

    def registry(self, name: str) -> pd.DataFrame:
        """One row per registered version with its aliases and test metrics, newest first."""
        rows = []
        for entry in list_versions(self.ws, name):
            meta = model_metadata(self.ws, name, entry["version"])
            metrics = entry["metrics"]
            rows.append(
                {
                    "version": entry["version"],
                    "aliases": ", ".join(entry["aliases"]),
                    "registered_at": entry["registered_at"][:19].replace("T", " "),
                    "estimator": entry["estimator"],
                    **{m: metrics.get(m) for m in METRICS},
                    "train_rows": metrics.get("train_rows"),
                    "test_rows": metrics.get("test_rows"),
                    "feature_version": entry["feature_version"],
                    "sha256": meta["sha256"][:12],
                }
            )
        table = pd.DataFrame(rows)
        return table.sort_values("version", ascending=False, ignore_index=True) if rows else table

    def versions(self, name: str) -> dict[str, int]:
        """Choices for a version picker, newest first: ``"3 (production)"`` -> 3."""
        out = {}
        for entry in reversed(list_versions(self.ws, name)):
            v, held = entry["version"], ", ".join(entry["aliases"])
            out[f"{v} ({held})" if held else str(v)] = v
        return out

    def default_version(self, name: str) -> int:
        """The version the dashboards open on: production, else the newest."""
        return resolve_version(self.ws, name)

    def metadata(self, name: str, version: int) -> dict:
        """``metadata.json`` of a version (read once: versions never change)."""
        return _metadata(self.catalog_path, self.workspace, name, version)

    def curves(self, name: str, version: int) -> dict[str, pd.DataFrame] | None:
        """The ROC (``fpr``, ``tpr``, ``threshold``) and precision/recall (``recall``,
        ``precision``, ``threshold``) points of the version's test rows, as training recorded
        them; None for a version registered before curves were kept, or a regressor."""
        recorded = self.metadata(name, version).get("curves")
        if not recorded:
            return None
        return {kind: pd.DataFrame(recorded[kind], dtype="float64") for kind in ("roc", "pr")}

    def monitoring(self, name: str, version: int) -> list[dict]:
        """Drift reports of ``version``, one per window (the latest check of a window wins),
        in window order: by the window's start, else by when it was checked."""
        latest: dict[tuple, dict] = {}
        for report in drift_reports(self.ws, name):
            if report["version"] == version:
                latest[(report.get("start"), report.get("end"), report["window"])] = report
        return sorted(latest.values(), key=lambda r: r.get("start") or r["checked_at"])

    def drift_history(self, name: str, version: int) -> pd.DataFrame:
        """PSI per feature per monitoring window: ``window`` (see :func:`window_label`),
        ``feature``, ``psi``, ``drifted``, ``ignored`` and ``threshold`` (the PSI alert level
        of that check)."""
        rows = [
            {
                "window": window_label(report),
                "rows": report["window_rows"],
                "feature": f["feature"],
                "psi": f["psi"],
                "drifted": bool(f["drifted"]),
                "ignored": bool(f.get("ignored", False)),
                "threshold": report["thresholds"]["psi"],
            }
            for report in self.monitoring(name, version)
            for f in report["features"]
        ]
        return pd.DataFrame(rows, columns=list(_DRIFT_COLUMNS)).astype(_DRIFT_COLUMNS)

    def performance_history(self, name: str, version: int) -> pd.DataFrame:
        """The metric on each monitoring window whose rows had labels, beside the test-set
        ``reference`` and the ``alert_at`` level the catalog's ``performance_drop`` sets."""
        rows = []
        for report in self.monitoring(name, version):
            perf = report.get("performance")
            if not perf:
                continue
            drop = report["thresholds"]["performance_drop"]
            ref = perf["reference"]
            alert_at = ref - drop if perf["metric"] == "roc_auc" else ref * (1 + drop)
            rows.append(
                {
                    "window": window_label(report),
                    "metric": perf["metric"],
                    "value": perf["window"],
                    "reference": ref,
                    "alert_at": alert_at,
                    "decayed": bool(perf["decayed"]),
                }
            )
        columns = ["window", "metric", "value", "reference", "alert_at", "decayed"]
        return pd.DataFrame(rows, columns=columns)

    def current(self, name: str) -> tuple[Predictor, dict]:
        """The model the dashboards score with (production, else the newest), sha256-checked."""
        version = resolve_version(self.ws, name)
        predictor = _load(self.catalog_path, self.workspace, name, version)
        return predictor, predictor.fit_info

    def feature_importance(self, meta: dict) -> pd.DataFrame:
        gain = pd.Series(meta.get("feature_importance", {}), name="gain", dtype="float64")
        table = gain.rename_axis("feature").reset_index()
        return table.sort_values("gain", ascending=False, ignore_index=True)

    def feature_defaults(self, name: str, meta: dict) -> dict[str, object]:
        """Where the what-if form starts: medians of the numeric features in the feature table
        version the model was trained on, the first level of categorical ones."""
        numeric = tuple(f for f in meta["features"] if f not in meta["categories"])
        data = meta["data"]
        defaults: dict[str, object] = dict(
            _feature_defaults(
                self.catalog_path,
                self.workspace,
                data["feature_set"],
                data["feature_version"],
                numeric,
            )
        )
        defaults |= {c: levels[0] for c, levels in meta["categories"].items()}
        return defaults

    def predict(self, name: str, values: dict[str, object]) -> float:
        """Probability of the positive class (or the predicted value) for one row."""
        predictor, _ = self.current(name)
        return float(predictor.predict(pd.DataFrame([values]))[0])
