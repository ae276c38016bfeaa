"""Machine learning on the cluster: features, training, the registry, scoring and drift.

The functions views and notebooks use: :func:`list_versions`, :func:`aliases`,
:func:`load_predictor` / :func:`load_model`, :func:`predict_one`, :func:`read_predictions`,
:func:`drift_reports`, :func:`read_features`, :func:`feature_info`.
"""

from workbench.ml.drift import drift_reports
from workbench.ml.estimators import ESTIMATORS, Predictor, get_estimator
from workbench.ml.features import (
    build_features,
    encode_features,
    feature_info,
    make_features,
    read_features,
)
from workbench.ml.metrics import calibration_table, classification_metrics, regression_metrics
from workbench.ml.monitor import monitor_model
from workbench.ml.promotion import Promotion, promote_model
from workbench.ml.registry import (
    RegisteredModel,
    alias_history,
    aliases,
    list_versions,
    load_model,
    load_predictor,
    model_metadata,
    model_names,
    register_model,
    resolve_version,
    rollback,
)
from workbench.ml.score import (
    ACTUAL,
    predict_one,
    prediction_columns,
    prediction_provenance,
    predictions_version,
    read_predictions,
    score_batch,
)
from workbench.ml.train import TrainedModel, train_model

__all__ = [
    "ACTUAL",
    "ESTIMATORS",
    "Predictor",
    "Promotion",
    "RegisteredModel",
    "TrainedModel",
    "alias_history",
    "aliases",
    "build_features",
    "calibration_table",
    "classification_metrics",
    "drift_reports",
    "encode_features",
    "feature_info",
    "get_estimator",
    "list_versions",
    "load_model",
    "load_predictor",
    "make_features",
    "model_metadata",
    "model_names",
    "monitor_model",
    "predict_one",
    "prediction_columns",
    "prediction_provenance",
    "predictions_version",
    "promote_model",
    "read_features",
    "read_predictions",
    "register_model",
    "resolve_version",
    "regression_metrics",
    "rollback",
    "score_batch",
    "train_model",
]
