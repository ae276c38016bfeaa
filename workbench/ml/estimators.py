"""The estimator registry: how each catalog ``estimator:`` fits on Dask, resumes and predicts.

- ``lightgbm_classifier``, ``lightgbm_regressor``: ``lightgbm.dask`` on every worker; stored
  as LightGBM text.
- ``logistic_regression``, ``linear_regression``: dask-ml GLMs (``solver: lbfgs``); skops.
- ``sgd_classifier``, ``sgd_regressor``: dask-ml ``Incremental``, one pass per epoch; skops.
- ``sklearn`` (with ``sklearn_class:``): the class itself, wrapped in ``ParallelPostFit``; skops.

Linear and SGD models run inside one scikit-learn ``Pipeline`` with dask-ml's
``StandardScaler`` (missing values become the mean, 0 after scaling). Categorical features are
one-hot encoded per partition against the fixed levels recorded with the feature table: dask-ml's
fitted ``DummyEncoder`` keeps pandas objects that skops cannot store, while the fixed levels make
the encoding stateless. dask-ml's GLMs default to the ADMM solver, measured 25x slower than
scikit-learn here; the registry makes ``lbfgs`` the default.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dask.dataframe as dd
import lightgbm
import numpy as np
import pandas as pd

from workbench.catalog.learning import ESTIMATOR_TASKS
from workbench.errors import CatalogError, WorkbenchError
from workbench.ml.checkpoints import Checkpoint
from workbench.ml.features import encode_features, feature_matrix

LABEL = "__label"
# The types each estimator's skops file holds beyond those skops itself trusts (scikit-learn's
# estimators): exactly what its pipeline stores, so a file holding anything else is refused.
_SCALING_TYPES = frozenset({"dask_ml.preprocessing.data.StandardScaler", "numpy.nan_to_num"})
_SKLEARN_TYPES = frozenset(
    {
        "dask_ml.wrappers.ParallelPostFit",
        "numpy.dtype",
        "sklearn.tree._tree.Tree",  # the trees of forests and gradient boosting
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


@dataclass(frozen=True)
class FitData:
    """Lazy, encoded training and validation rows (features + ``__label``)."""

    train: dd.DataFrame
    validation: dd.DataFrame
    features: list[str]
    categories: dict[str, list[str]]
    task: str
    seed: int = 42


@dataclass
class Predictor:
    """A fitted model and what it needs to score rows of raw feature values.

    Examples
    --------
    >>> predictor.predict(pd.DataFrame([{"carrier": "UA", "temp": 40.0, ...}]))  # doctest: +SKIP
    array([0.31])
    """

    kind: str  # "lightgbm" or "sklearn"
    model: Any
    task: str
    features: list[str]
    categories: dict[str, list[str]]
    fit_info: dict[str, Any] = field(default_factory=dict)
    native: Any = None  # a compiled forest (workbench.ml.native) for batch scoring, when kept

    def predict(self, rows: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        """Probability of the positive class (classifiers) or the predicted value.

        ``threads=1`` inside Dask tasks: each worker already has its core.
        """
        if not self._native_here():  # a compiled forest reads raw rows into its matrix itself
            rows = encode_features(rows, self.features, self.categories)
        return self.predict_encoded(rows, threads=threads)

    def predict_encoded(self, encoded: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        if encoded.empty:  # an empty partition, or Dask's meta
            return np.empty(0, dtype="float64")
        if self._native_here():
            matrix = feature_matrix(encoded, self.features, self.categories)
            return self.native.predict(matrix, threads=threads)
        if self.kind == "lightgbm":
            scores = self.model.predict(encoded[self.features], num_threads=threads)
            return np.asarray(scores, dtype="float64")
        matrix = design_matrix(encoded[self.features]).to_numpy()
        if self.task == "classification":
            return np.asarray(self.model.predict_proba(matrix)[:, 1], dtype="float64")
        return np.asarray(self.model.predict(matrix), dtype="float64")

    def _native_here(self) -> bool:
        return self.native is not None and self.native.runs_here()

    def importance(self) -> dict[str, float]:
        """Gain (LightGBM) or summed absolute scaled coefficients per feature."""
        if self.kind == "lightgbm":
            gains = self.model.feature_importance("gain")
            return {
                n: round(float(g), 2) for n, g in zip(self.model.feature_name(), gains, strict=True)
            }
        final = self.model[-1] if hasattr(self.model, "steps") else self.model
        final = getattr(final, "estimator", final)
        values = getattr(final, "feature_importances_", None)
        if values is None:
            values = np.abs(np.atleast_2d(getattr(final, "coef_", np.zeros(1)))).sum(axis=0)
        columns = design_columns(self.features, self.categories)
        if len(values) != len(columns):
            return {}
        out = dict.fromkeys(self.features, 0.0)
        for col, value in zip(columns, values, strict=True):
            out[_owner(col, self.features)] += float(value)
        return {k: round(v, 4) for k, v in out.items()}

    @property
    def file_name(self) -> str:
        return "model.txt" if self.kind == "lightgbm" else "model.skops"

    def to_bytes(self) -> bytes:
        if self.kind == "lightgbm":
            return self.model.model_to_string().encode()
        import skops.io

        return skops.io.dumps(self.model)


def _owner(column: str, features: list[str]) -> str:
    if column in features:
        return column
    return max((f for f in features if column.startswith(f"{f}_")), key=len)


def model_from_bytes(kind: str, data: bytes, where: str, trusted: frozenset[str]) -> Any:
    """Read a stored model: LightGBM text, or skops trusting only the estimator's own types
    (:func:`trusted_types`) besides those skops trusts itself."""
    if kind == "lightgbm":
        return lightgbm.Booster(model_str=data.decode())
    import skops.io

    found = skops.io.get_untrusted_types(data=data)
    refused = sorted(set(found) - trusted)
    if refused:
        raise WorkbenchError(
            f"{where} holds types its estimator does not store: {refused}. Refusing to load "
            "it; retrain the model with `workbench model train`. If a scikit-learn class of "
            "yours needs them, add them to its estimator's `trusted_types` in "
            "workbench/ml/estimators.py."
        )
    return skops.io.loads(data, trusted=found)


def trusted_types(estimator: str | None) -> frozenset[str]:
    """The skops types a model of ``estimator`` (a registry name, or the ``sklearn_class`` of
    an ``sklearn`` model, as ``metadata.json`` records it) may hold."""
    if estimator in ESTIMATORS:
        return ESTIMATORS[estimator].trusted_types
    return SklearnEstimator.trusted_types


def design_columns(features: list[str], categories: dict[str, list[str]]) -> list[str]:
    out = []
    for f in features:
        out += [f"{f}_{level}" for level in categories[f]] if f in categories else [f]
    return out


def design_matrix(encoded: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as they are, one 0/1 column per level of each categorical column."""
    parts = []
    for col in encoded.columns:
        values = encoded[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            dummies = pd.get_dummies(values, prefix=col, dtype="float64")
            parts.append(dummies)
        else:
            parts.append(values.astype("float64").to_frame())
    return pd.concat(parts, axis=1) if parts else encoded


def _arrays(frame: dd.DataFrame, features: list[str]):
    matrix = frame[features].map_partitions(design_matrix)
    return matrix.to_dask_array(lengths=True), frame[LABEL].to_dask_array(lengths=True)


class Estimator(ABC):
    """One estimator kind: ``fit`` returns a :class:`Predictor`; subclasses set the class
    attributes and ``make``/``fit``."""

    name: ClassVar[str]
    kind: ClassVar[str] = "sklearn"
    defaults: ClassVar[dict[str, Any]] = {}
    incremental: ClassVar[bool] = False
    trusted_types: ClassVar[frozenset[str]] = frozenset()  # see model_from_bytes

    @property
    def task(self) -> str:
        """classification or regression, as the catalog's estimator registry declares it."""
        return ESTIMATOR_TASKS[self.name]

    def params(self, given: dict[str, Any], seed: int) -> dict[str, Any]:
        return {**self.defaults, **given}

    @abstractmethod
    def fit(self, data: FitData, params: dict[str, Any], checkpoint: Checkpoint | None):
        """Train on ``data`` (resuming from ``checkpoint`` when given) into a Predictor."""

    def _predictor(self, data: FitData, model: Any, **info: Any) -> Predictor:
        return Predictor(self.kind, model, self.task, data.features, data.categories, info)


class _ThreadsNotice(logging.Filter):
    """Drops lightgbm.dask's "Parameter n_jobs will be ignored.": it sets each worker's threads
    itself and says so at every fit, though nobody asked for n_jobs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith(" will be ignored.")


class _LightGBM(Estimator):
    kind = "lightgbm"
    dask_class: ClassVar[str]

    def params(self, given: dict[str, Any], seed: int) -> dict[str, Any]:
        return {"random_state": seed, "verbose": -1, "n_estimators": 100, **given}

    def fit(self, data: FitData, params: dict[str, Any], checkpoint: Checkpoint | None):
        import lightgbm.dask

        # LightGBM prints progress to stdout by default, which would corrupt `--json` output.
        logger = logging.getLogger("lightgbm")
        if not any(isinstance(f, _ThreadsNotice) for f in logger.filters):
            logger.addFilter(_ThreadsNotice())
        lightgbm.register_logger(logger)
        total = int(params["n_estimators"])
        done, init = 0, None
        if checkpoint is not None and (found := checkpoint.latest()) is not None:
            done, init = found[0], lightgbm.Booster(model_str=found[1].decode())
        if done >= total:
            return self._predictor(data, init, resumed_from=done, iterations=done)
        model = getattr(lightgbm.dask, self.dask_class)(**{**params, "n_estimators": total - done})
        kwargs: dict[str, Any] = {"callbacks": [checkpoint]} if checkpoint else {}
        if init is not None:
            kwargs["init_model"] = init
        train = data.train
        model.fit(train[data.features], train[LABEL], **kwargs)
        booster = model.to_local().booster_
        return self._predictor(data, booster, resumed_from=done, iterations=booster.num_trees())


class LightGBMClassifier(_LightGBM):
    name, dask_class = "lightgbm_classifier", "DaskLGBMClassifier"


class LightGBMRegressor(_LightGBM):
    name, dask_class = "lightgbm_regressor", "DaskLGBMRegressor"


def _scaling():
    from dask_ml.preprocessing import StandardScaler
    from sklearn.preprocessing import FunctionTransformer

    # Scaled missing values become 0, the training mean.
    return [("scale", StandardScaler()), ("impute", FunctionTransformer(np.nan_to_num))]


class _GLM(Estimator):
    defaults: ClassVar[dict[str, Any]] = {"solver": "lbfgs"}
    glm_class: ClassVar[str]

    def fit(self, data: FitData, params: dict[str, Any], checkpoint: Checkpoint | None):
        import dask_ml.linear_model
        from sklearn.pipeline import Pipeline

        X, y = _arrays(data.train, data.features)
        glm = getattr(dask_ml.linear_model, self.glm_class)(**params)
        model = Pipeline([*_scaling(), ("model", glm)]).fit(X, y)
        return self._predictor(data, model)


class LogisticRegression(_GLM):
    name, glm_class = "logistic_regression", "LogisticRegression"
    trusted_types = _SCALING_TYPES | {"dask_ml.linear_model.glm.LogisticRegression"}


class LinearRegression(_GLM):
    name, glm_class = "linear_regression", "LinearRegression"
    trusted_types = _SCALING_TYPES | {"dask_ml.linear_model.glm.LinearRegression"}


class _SGD(Estimator):
    """dask-ml ``Incremental``: each epoch passes once over every block, in shuffled order."""

    incremental = True
    sgd_class: ClassVar[str]
    trusted_types = _SCALING_TYPES

    def params(self, given: dict[str, Any], seed: int) -> dict[str, Any]:
        return {"random_state": seed, "epochs": 5, **self.defaults, **given}

    def make(self, params: dict[str, Any]):
        import sklearn.linear_model

        return getattr(sklearn.linear_model, self.sgd_class)(**params)

    def fit(self, data: FitData, params: dict[str, Any], checkpoint: Checkpoint | None):
        import skops.io
        from dask_ml.wrappers import Incremental
        from sklearn.pipeline import Pipeline

        params = dict(params)
        epochs = int(params.pop("epochs"))
        X, y = _arrays(data.train, data.features)
        start, prep = 0, None
        inc = Incremental(self.make(params), random_state=params.get("random_state"))
        if checkpoint is not None and (found := checkpoint.latest()) is not None:
            where = str(checkpoint.folder)
            saved = model_from_bytes("sklearn", found[1], where, self.trusted_types)
            start, prep, inc.estimator_ = found[0], Pipeline(saved.steps[:-1]), saved[-1]
        if prep is None:
            prep = Pipeline(_scaling()).fit(X)
        Xs = prep.transform(X).persist()
        kwargs = {"classes": [0, 1]} if self.task == "classification" else {}
        for epoch in range(start, epochs):
            inc.partial_fit(Xs, y, **kwargs)
            if checkpoint is not None and (epoch + 1) % checkpoint.every == 0:
                model = Pipeline([*prep.steps, ("model", inc.estimator_)])
                checkpoint.save(epoch + 1, skops.io.dumps(model), "skops")
        model = Pipeline([*prep.steps, ("model", inc.estimator_)])
        return self._predictor(data, model, resumed_from=start, iterations=epochs)


class SGDClassifier(_SGD):
    name, sgd_class = "sgd_classifier", "SGDClassifier"
    # Probabilities need log loss; scikit-learn's alpha=1e-4 left the flight model noisy after a
    # few epochs (test AUC 0.67 against 0.70 with 1e-3 and 0.72 for full-batch lbfgs).
    defaults: ClassVar[dict[str, Any]] = {"loss": "log_loss", "alpha": 0.001}


class SGDRegressor(_SGD):
    name, sgd_class = "sgd_regressor", "SGDRegressor"


class SklearnEstimator(Estimator):
    """Any scikit-learn estimator, fitted in memory on the collected training rows (small data)
    and wrapped in dask-ml's ``ParallelPostFit`` so predicting Dask data runs per block."""

    name = "sklearn"
    trusted_types = _SKLEARN_TYPES

    def __init__(self, class_path: str, task: str) -> None:
        self.class_path, self._task = class_path, task

    @property
    def task(self) -> str:
        return self._task  # declared in the catalog as the model's `sklearn_task`

    def fit(self, data: FitData, params: dict[str, Any], checkpoint: Checkpoint | None):
        from dask_ml.wrappers import ParallelPostFit
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        cls = self.estimator_class()
        X, y = _arrays(data.train, data.features)
        X, y = X.compute(), y.compute()
        model = Pipeline([("impute", SimpleImputer()), ("model", ParallelPostFit(cls(**params)))])
        return self._predictor(data, model.fit(X, y))

    def estimator_class(self) -> type:
        """The named class, when it is a public scikit-learn estimator of the model's task.

        The catalog is not code: a name that resolves to anything else (a function, a helper
        class, a private module) is refused before it is called with the catalog's params."""
        from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

        module, _, name = self.class_path.rpartition(".")
        hint = "give the full path of a scikit-learn estimator, e.g. sklearn.ensemble."
        hint += "RandomForestClassifier."
        if any(part.startswith("_") for part in self.class_path.split(".")):
            raise CatalogError(f"sklearn_class {self.class_path!r} is private; {hint}")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CatalogError(
                f"sklearn_class {self.class_path!r} cannot be imported; {hint}"
            ) from exc
        kind = ClassifierMixin if self._task == "classification" else RegressorMixin
        if not (isinstance(cls, type) and issubclass(cls, BaseEstimator) and issubclass(cls, kind)):
            raise CatalogError(
                f"sklearn_class {self.class_path!r} is not a scikit-learn {self._task} "
                f"estimator (sklearn_task: {self._task}); {hint}"
            )
        return cls


# The implementation of each name of the catalog's registry (ESTIMATOR_TASKS) but `sklearn`.
ESTIMATORS: dict[str, type[Estimator]] = {
    cls.name: cls
    for cls in (
        LightGBMClassifier,
        LightGBMRegressor,
        LogisticRegression,
        LinearRegression,
        SGDClassifier,
        SGDRegressor,
    )
}


def get_estimator(name: str, sklearn_class: str | None = None, task: str = "classification"):
    """The estimator for a catalog ``estimator:`` name; unknown names list the known ones."""
    if name == "sklearn":
        return SklearnEstimator(sklearn_class or "", task)
    try:
        return ESTIMATORS[name]()
    except KeyError:
        known = ", ".join(ESTIMATOR_TASKS)
        raise CatalogError(f"unknown estimator {name!r}; choose one of {known}.") from None
