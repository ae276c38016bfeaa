"""Test-set metrics, each beside the score of a baseline so a useless model is visible."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

# Metrics where a smaller value is better; every other one is better when larger.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss, accuracy, precision, recall, Brier score, with the majority-class
    (accuracy) and base-rate (log loss, Brier) baselines.

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]))
    >>> m["roc_auc"], m["accuracy"]
    (1.0, 1.0)
    """
    y = np.asarray(y, dtype="int64")
    base_rate = float(y.mean()) if len(y) else 0.0
    predicted = p >= 0.5
    constant = np.full(len(y), base_rate)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if 0 < base_rate < 1 else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": base_rate,
        "baseline_accuracy": max(base_rate, 1 - base_rate),
        "baseline_log_loss": float(log_loss(y, constant, labels=[0, 1])),
        "baseline_brier": float(brier_score_loss(y, constant)),
        "baseline_roc_auc": 0.5,
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted probability against the observed rate in equal-width score bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "rows": int(inside.sum()),
                    "predicted": float(p[inside].mean()),
                    "observed": float(y[inside].mean()),
                }
            )
    return out


def classification_curves(
    y: np.ndarray, p: np.ndarray, points: int = 200
) -> dict[str, dict[str, list]]:
    """ROC and precision/recall curves of scikit-learn, thinned to about ``points`` points each,
    so the registry can keep them and a dashboard never scores the test rows again.

    The points kept are points of scikit-learn's curves (``roc_curve``,
    ``precision_recall_curve``) at thresholds spread over the score quantiles, plus both ends.
    Each curve has its ``threshold`` column (``None`` where no score reaches it). Empty when the
    rows hold one class only.

    Examples
    --------
    >>> c = classification_curves(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]))
    >>> c["roc"]["tpr"], c["pr"]["precision"]
    ([0.0, 0.5, 1.0, 1.0], [0.5, 0.666667, 1.0, 1.0, 1.0])
    """
    y = np.asarray(y, dtype="int64")
    p = np.asarray(p, dtype="float64")
    if not 0 < y.sum() < len(y):
        return {}
    cuts = np.quantile(p, np.linspace(0, 1, points))
    fpr, tpr, roc_t = roc_curve(y, p)  # thresholds decreasing, the first one infinite
    roc_at = np.searchsorted(-roc_t, -cuts, side="right") - 1
    precision, recall, pr_t = precision_recall_curve(y, p)  # thresholds increasing
    pr_at = np.searchsorted(pr_t, cuts, side="left")
    roc = _thinned(roc_at, len(fpr), fpr=fpr, tpr=tpr, threshold=roc_t)
    pr = _thinned(pr_at, len(recall), recall=recall, precision=precision, threshold=pr_t)
    return {"roc": roc, "pr": pr, "rows": int(len(y)), "positives": int(y.sum())}


def _thinned(at: np.ndarray, n: int, **columns: np.ndarray) -> dict[str, list]:
    keep = np.unique(np.clip(np.concatenate([[0, n - 1], at]), 0, n - 1))
    out = {}
    for name, values in columns.items():
        picked = [float(values[i]) if i < len(values) else None for i in keep]
        out[name] = [None if v is None or not np.isfinite(v) else round(v, 6) for v in picked]
    return out


def regression_metrics(y: np.ndarray, p: np.ndarray, train_mean: float) -> dict[str, float]:
    """RMSE, MAE and R2, with the scores of always predicting the training mean."""
    y = np.asarray(y, dtype="float64")
    constant = np.full(len(y), train_mean)
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)),
        "baseline_rmse": float(np.sqrt(mean_squared_error(y, constant))),
        "baseline_mae": float(mean_absolute_error(y, constant)),
        "baseline_r2": float(r2_score(y, constant)),
    }


def better(metric: str, new: float, old: float, margin: float = 0.0) -> bool:
    """True when ``new`` beats ``old`` on ``metric`` by more than ``margin``."""
    if metric in LOWER_IS_BETTER:
        return new < old - margin
    return new > old + margin
