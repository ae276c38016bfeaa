"""Drift between a model's training data and a window of new rows, computed out of core.

Every statistic comes from binned counts that each partition computes on its own, summed on the
cluster: nothing but counts leaves the workers. Numeric features are binned on the training
deciles (``monitor.bins``), categorical ones by level, missing values in a bin of their own.

- PSI for every feature; KS (over the same bins) for numeric ones; chi-square with Cramer's V
  for categorical ones.
- Prediction drift: PSI of the model's scores against its scores on the test rows.
- Performance decay, when the window has labels: ROC AUC from score histograms per class (1000
  bins), or RMSE from summed squared errors, against the registered test metric.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from scipy import stats

from workbench.catalog.models import Monitor

MISSING = "(missing)"
SCORE = "__score"
PERF = "__perf"
_AUC_BINS = 1000
_COUNTS_META = pd.DataFrame(
    {
        "feature": pd.Series([], dtype="str"),
        "bin": pd.Series([], dtype="str"),
        "count": pd.Series([], dtype="float64"),
    }
)


def _bins(values: pd.Series, edges: list[float] | None) -> pd.Series:
    if edges is None:
        return values.astype("str").where(values.notna(), MISSING)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    which = np.searchsorted(np.asarray(edges), numbers, side="right").astype(str)
    return pd.Series(np.where(np.isnan(numbers), MISSING, which), index=values.index)


def _long_counts(df: pd.DataFrame, edges: dict[str, list[float] | None]) -> pd.DataFrame:
    parts = []
    for feature, feature_edges in edges.items():
        counts = _bins(df[feature], feature_edges).value_counts()
        parts.append(
            pd.DataFrame(
                {"feature": feature, "bin": counts.index.astype(str), "count": counts.to_numpy()}
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _COUNTS_META.copy()


def _window_counts(
    df: pd.DataFrame,
    edges: dict[str, list[float] | None],
    predictor: Any,
    score_edges: list[float],
    label: str | None,
) -> pd.DataFrame:
    out = _long_counts(df, edges)
    if predictor is None or df.empty:
        return out.astype(_COUNTS_META.dtypes)
    scores = pd.Series(predictor.predict(df, threads=1), index=df.index)
    parts = [out, _long_counts(pd.DataFrame({SCORE: scores}), {SCORE: score_edges})]
    if label is not None and label in df:
        y = pd.to_numeric(df[label], errors="coerce").astype("float64")
        known = y.notna()
        y, p = y[known].to_numpy(), scores[known].to_numpy()
        if predictor.task == "classification":
            b = np.clip((p * _AUC_BINS).astype(int), 0, _AUC_BINS - 1)
            keys = pd.Series([f"{int(c)}:{k}" for c, k in zip(y, b, strict=True)])
            counts = keys.value_counts()
            perf = pd.DataFrame({"bin": counts.index, "count": counts.to_numpy(dtype=float)})
        else:
            err = p - y
            perf = pd.DataFrame(
                {"bin": ["sse", "n"], "count": [float((err**2).sum()), float(len(err))]}
            )
        parts.append(perf.assign(feature=PERF))
    return pd.concat(parts, ignore_index=True)[list(_COUNTS_META.columns)].astype(
        _COUNTS_META.dtypes
    )


def _sum_counts(
    frame: dd.DataFrame, edges: dict, predictor: Any, score_edges: list, label: str | None
) -> dict[str, dict[str, float]]:
    from workbench.cluster import share

    model = share(predictor) if predictor is not None else None
    counted = frame.map_partitions(
        _window_counts, edges, model, score_edges, label, meta=_COUNTS_META, enforce_metadata=False
    )
    totals = counted.groupby(["feature", "bin"])["count"].sum().compute()
    out: dict[str, dict[str, float]] = {}
    for (feature, b), n in totals.items():
        out.setdefault(feature, {})[b] = float(n)
    return out


def reference_profile(
    train: dd.DataFrame,
    features: list[str],
    categorical: list[str],
    bins: int,
    test_scores: np.ndarray,
) -> dict[str, Any]:
    """Bin edges and counts of the training rows (and of the test scores), kept with the model."""
    numeric = [f for f in features if f not in categorical]
    qs = np.linspace(0, 1, bins + 1)[1:-1].tolist()
    edges: dict[str, list[float] | None] = dict.fromkeys(categorical)
    if numeric:
        quantiles = train[numeric].quantile(qs).compute()
        for f in numeric:
            values = quantiles[f].to_numpy(dtype="float64")
            edges[f] = sorted(set(values[np.isfinite(values)].tolist()))
    counts = _sum_counts(train, edges, None, [], None)
    score_edges = sorted(set(np.quantile(test_scores, qs).tolist())) if len(test_scores) else []
    score_counts = _bins(pd.Series(test_scores), score_edges).value_counts()
    return {
        "bins": bins,
        "features": {
            f: {
                "kind": "categorical" if edges[f] is None else "numeric",
                "edges": edges[f],
                "counts": counts.get(f, {}),
            }
            for f in features
        },
        "score": {"edges": score_edges, "counts": {k: float(v) for k, v in score_counts.items()}},
    }


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p = np.clip(expected / max(expected.sum(), 1), 1e-4, None)
    q = np.clip(actual / max(actual.sum(), 1), 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _aligned(ref: dict[str, float], new: dict[str, float], order: list[str]):
    return (
        np.array([ref.get(k, 0.0) for k in order]),
        np.array([new.get(k, 0.0) for k in order]),
    )


def feature_drift(name: str, ref: dict, new: dict[str, float], m: Monitor) -> dict[str, Any]:
    """PSI, and KS (numeric) or chi-square (categorical), for one feature."""
    out: dict[str, Any] = {"feature": name, "kind": ref["kind"]}
    if ref["kind"] == "numeric":
        ordered = [str(i) for i in range(len(ref["edges"]) + 1)]
        a, b = _aligned(ref["counts"], new, [*ordered, MISSING])
        out["psi"] = psi(a, b)
        a, b = _aligned(ref["counts"], new, ordered)
        n, k = a.sum(), b.sum()
        if n and k:
            d = float(np.max(np.abs(np.cumsum(a) / n - np.cumsum(b) / k)))
            out["ks"] = d
            out["ks_pvalue"] = float(stats.kstwo.sf(d, max(int(round(n * k / (n + k))), 1)))
        out["drifted"] = out["psi"] > m.psi or out.get("ks", 0.0) > m.ks
    else:
        levels = sorted(set(ref["counts"]) | set(new))
        a, b = _aligned(ref["counts"], new, levels)
        out["psi"] = psi(a, b)
        table = np.vstack([a, b])[:, (a + b) > 0]
        if table.shape[1] > 1 and a.sum() and b.sum():
            chi2, pvalue, _, _ = stats.chi2_contingency(table)
            out["chi2"], out["chi2_pvalue"] = float(chi2), float(pvalue)
            out["cramers_v"] = float(np.sqrt(chi2 / table.sum()))
        significant = out.get("chi2_pvalue", 1.0) < m.chi2_pvalue
        out["drifted"] = out["psi"] > m.psi or (
            significant and out.get("cramers_v", 0.0) > m.cramers_v
        )
    out["window_rows"] = float(sum(new.values()))
    return out


def _auc_from_histogram(perf: dict[str, float]) -> float | None:
    pos, neg = np.zeros(_AUC_BINS), np.zeros(_AUC_BINS)
    for key, n in perf.items():
        cls, b = key.split(":")
        (pos if cls == "1" else neg)[int(b)] += n
    if not pos.sum() or not neg.sum():
        return None
    below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def performance(perf: dict[str, float], task: str, reference: dict, m: Monitor) -> dict | None:
    """The window's metric against the registered test metric; None without labels."""
    if not perf:
        return None
    if task == "classification":
        metric, value = "roc_auc", _auc_from_histogram(perf)
        if value is None:
            return None
        drop = reference["roc_auc"] - value
    else:
        metric, value = "rmse", float(np.sqrt(perf["sse"] / max(perf["n"], 1)))
        drop = (value - reference["rmse"]) / max(reference["rmse"], 1e-12)
    return {
        "metric": metric,
        "reference": reference[metric],
        "window": value,
        "drop": float(drop),
        "decayed": bool(drop > m.performance_drop),
    }


def compare_window(predictor: Any, meta: dict, window: dd.DataFrame, m: Monitor) -> dict[str, Any]:
    """Drift of ``window`` (raw feature rows, with the label when known) from the reference."""
    reference = meta["reference"]
    features = reference["features"]
    edges = {f: r["edges"] for f, r in features.items()}
    label = meta.get("label") if meta.get("label") in window.columns else None
    counts = _sum_counts(window, edges, predictor, reference["score"]["edges"], label)
    rows = [feature_drift(f, features[f], counts.get(f, {}), m) for f in features]
    rows.sort(key=lambda r: -r["psi"])
    order = [str(i) for i in range(len(reference["score"]["edges"]) + 1)]
    a, b = _aligned(reference["score"]["counts"], counts.get(SCORE, {}), order)
    prediction = {"psi": psi(a, b), "drifted": psi(a, b) > m.prediction_psi}
    perf = performance(counts.get(PERF, {}), predictor.task, meta["metrics"], m)
    for r in rows:
        r["ignored"] = r["feature"] in m.ignore
        r["drifted"] = bool(r["drifted"]) and not r["ignored"]
    drifted = [r["feature"] for r in rows if r["drifted"]]
    alerts = []
    if len(drifted) > m.max_drifted_features:
        alerts.append(f"{len(drifted)} features drifted: {', '.join(drifted)}")
    if prediction["drifted"]:
        alerts.append(f"predictions drifted (PSI {prediction['psi']:.3f})")
    if perf and perf["decayed"]:
        alerts.append(f"{perf['metric']} fell from {perf['reference']:.3f} to {perf['window']:.3f}")
    return {
        "model": meta["name"],
        "version": meta["version"],
        "checked_at": dt.datetime.now(dt.UTC).isoformat(),
        "window_rows": int(sum(counts.get(next(iter(features)), {}).values())),
        "thresholds": m.model_dump(),
        "features": rows,
        "drifted": drifted,
        "prediction": prediction,
        "performance": perf,
        "alert": bool(alerts),
        "alerts": alerts,
    }


def drift_dir(ws: Any, name: str) -> Path:
    return ws.path("reports", "drift", name)


def drift_reports(ws: Any, name: str) -> list[dict[str, Any]]:
    """Saved drift reports of a model, oldest first (each with ``json`` and ``html`` paths).

    Examples
    --------
    >>> latest = drift_reports(ws, "departure_delay")[-1]  # doctest: +SKIP
    >>> latest["alert"], latest["drifted"]  # doctest: +SKIP
    """
    folder = drift_dir(ws, name)
    if not folder.exists():
        return []
    out = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return sorted(out, key=lambda r: r["checked_at"])
