"""Machine learning on the cluster: features, training, the model registry."""

from workbench.ml.features import encode_features, training_data
from workbench.ml.registry import RegisteredModel, load_model, register_model
from workbench.ml.train import TrainedModel, classification_metrics, train_model

__all__ = [
    "RegisteredModel",
    "TrainedModel",
    "classification_metrics",
    "encode_features",
    "load_model",
    "register_model",
    "train_model",
    "training_data",
]
