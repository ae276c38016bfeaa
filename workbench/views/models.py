"""The models dashboard: the registry, metrics, feature importance and a what-if form.

:class:`ModelStore` is the only place that knows how models are stored; it reads through the
public functions of ``workbench.ml`` (``list_versions``, ``resolve_version``,
``load_predictor``, ``read_features``). The model a dashboard scores with is
:meth:`ModelStore.current`: the ``production`` alias, else the newest version.
"""

from __future__ import annotations

import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from workbench.ml import list_versions, load_predictor, model_metadata, read_features
from workbench.ml.estimators import Predictor
from workbench.ml.registry import resolve_version
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


@pn.cache(max_items=8)
def _load(catalog_path: str, workspace: str | None, name: str, version: int) -> Predictor:
    # Versions are immutable, so one load per version serves every session.
    return load_predictor(open_workspace(catalog_path, workspace), name, version)


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


class ModelsDashboard(pn.viewable.Viewer):
    """Registry table, metrics of the current model, feature importance, and a what-if form."""

    model = param.Selector(objects=[], label="Model")

    def __init__(self, store: ModelStore | None = None, **params):
        self.store = store or ModelStore()
        self.param.model.objects = self.store.models()
        params.setdefault("model", self.param.model.objects[0])
        super().__init__(**params)
        self.inputs = pn.Column(sizing_mode="stretch_width")
        self.result = pn.pane.Markdown(sizing_mode="stretch_width")
        self._build_form()

    def registry_data(self) -> pd.DataFrame:
        return self.store.registry(self.model)

    def importance_data(self) -> pd.DataFrame:
        return self.store.feature_importance(self.store.current(self.model)[1])

    @param.depends("model", watch=True)
    def _build_form(self) -> None:
        _, meta = self.store.current(self.model)
        defaults = self.store.feature_defaults(self.model, meta)
        widgets = []
        for feature in meta["features"]:
            if feature in meta["categories"]:
                widget = pn.widgets.Select(
                    label=feature, options=meta["categories"][feature], value=defaults[feature]
                )
            else:
                widget = pn.widgets.FloatInput(label=feature, value=round(defaults[feature], 2))
            widget.param.watch(lambda _e: self._score(), "value")
            widgets.append(widget)
        self.inputs.objects = widgets
        self._score()

    def whatif_values(self) -> dict[str, object]:
        return {w.label: w.value for w in self.inputs.objects}

    def whatif_probability(self) -> float:
        return self.store.predict(self.model, self.whatif_values())

    def _score(self) -> None:
        _, meta = self.store.current(self.model)
        p = self.whatif_probability()
        self.result.object = (
            f"### {p:.1%}\nprobability that `{meta['label']}` is true, from "
            f"`{self.model}` version {meta['version']}"
        )

    @param.depends("model")
    def registry_view(self):
        table = self.registry_data()
        formatters = {m: NumberFormatter(format="0.000") for m in METRICS}
        formatters |= {c: NumberFormatter(format="0,0") for c in ("train_rows", "test_rows")}
        return pn.widgets.Tabulator(
            table, formatters=formatters, show_index=False, disabled=True, page_size=10
        )

    @param.depends("model")
    def metrics_view(self):
        _, meta = self.store.current(self.model)
        m = meta["metrics"]
        frame = pd.DataFrame(
            {
                "metric": ["ROC AUC", "accuracy", "log loss"],
                "model": [m["roc_auc"], m["accuracy"], m["log_loss"]],
                "baseline": [0.5, m["baseline_accuracy"], m["baseline_log_loss"]],
            }
        )
        return frame.hvplot.bar(
            x="metric",
            y=["model", "baseline"],
            title=f"version {meta['version']} on {m['test_rows']:,} test rows",
            height=300,
            responsive=True,
            legend="top_right",
        )

    @param.depends("model")
    def importance_view(self):
        top = self.importance_data().head(20).iloc[::-1]
        return top.hvplot.barh(
            x="feature", y="gain", title="feature importance (gain)", height=420, responsive=True
        )

    def __panel__(self):
        whatif = pn.Column(
            pn.pane.Markdown("### What if\nChange a flight's features; the model answers."),
            self.result,
            self.inputs,
            sizing_mode="stretch_width",
        )
        return pn.Row(
            pn.Column(
                pn.widgets.Select.from_param(self.param.model),
                self.registry_view,
                self.metrics_view,
                self.importance_view,
                sizing_mode="stretch_width",
            ),
            pn.Column(whatif, width=340),
            sizing_mode="stretch_width",
        )
