"""Machine learning on the cluster: features, training, the registry, scoring and drift.

The functions views and notebooks use: :func:`list_versions`, :func:`aliases`,
:func:`load_predictor` / :func:`load_model`, :func:`predict_one`, :func:`read_predictions`,
:func:`drift_reports`, :func:`read_features`, :func:`feature_info`.
"""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".drift": ("drift_reports",),
        ".estimators": (
            "ESTIMATORS",
            "Predictor",
            "get_estimator",
        ),
        ".feature_build": ("build_features",),
        ".features": (
            "encode_features",
            "feature_info",
            "make_features",
            "read_features",
        ),
        ".metrics": (
            "calibration_table",
            "classification_metrics",
            "regression_metrics",
        ),
        ".monitor": ("monitor_model",),
        ".promotion": (
            "Promotion",
            "promote_model",
        ),
        ".registry": (
            "RegisteredModel",
            "alias_history",
            "aliases",
            "list_versions",
            "load_model",
            "load_predictor",
            "model_metadata",
            "model_names",
            "register_model",
            "resolve_version",
            "rollback",
        ),
        ".score": (
            "ACTUAL",
            "predict_one",
            "prediction_columns",
            "prediction_provenance",
            "predictions_version",
            "read_predictions",
            "score_batch",
        ),
        ".train": (
            "TrainedModel",
            "train_model",
        ),
    },
)
