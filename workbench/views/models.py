"""The models dashboard: the registry, metrics, feature importance and a what-if form.

:class:`ModelStore` is the only place that knows how models are stored; it reads through
``workbench.ml.registry`` (``load_model`` and the version folders' ``metadata.json``). The model
a dashboard scores with is :meth:`ModelStore.current`, today the newest version: point it at a
registry alias there when the registry has them, and nothing else changes.
"""

from __future__ import annotations

import hvplot.pandas  # noqa: F401
import lightgbm
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from workbench.io.delta import open_table
from workbench.io.workspace import read_json
from workbench.ml.features import encode_features
from workbench.ml.registry import METADATA, load_model
from workbench.views.source import (
    CatalogSource,
    open_workspace,
)
from workbench.zones.tables import table_path

METRICS = ["roc_auc", "log_loss", "accuracy", "baseline_accuracy", "baseline_log_loss"]


@pn.cache(max_items=8)
def _feature_defaults(path: str, version: int, features: tuple[str, ...]) -> dict[str, float]:
    table = open_table(path, version).to_pyarrow_dataset().to_table(columns=list(features))
    frame = table.to_pandas()
    return {c: float(pd.to_numeric(frame[c], errors="coerce").median()) for c in features}


@pn.cache(max_items=8)
def _load(catalog_path: str, workspace: str | None, name: str, version: int | None):
    # Versions are immutable, so one load per version serves every session.
    return load_model(open_workspace(catalog_path, workspace), name, version)


class ModelStore(CatalogSource):
    """Registered models of one catalog and workspace."""

    def models(self) -> list[str]:
        return list(self.catalog.models)

    def registry(self, name: str) -> pd.DataFrame:
        """One row per registered version with its test metrics, newest first."""
        root = self.ws.path("models", name)
        folders = [p for p in root.iterdir() if p.name.isdigit()] if root.exists() else []
        rows = []
        for folder in folders:
            meta = read_json(folder / METADATA)
            rows.append(
                {
                    "version": meta["version"],
                    "registered_at": meta["registered_at"][:19].replace("T", " "),
                    **{m: meta["metrics"].get(m) for m in METRICS},
                    "train_rows": meta["metrics"].get("train_rows"),
                    "test_rows": meta["metrics"].get("test_rows"),
                    "source_version": meta.get("data", {}).get("source_version"),
                    "sha256": meta["sha256"][:12],
                }
            )
        table = pd.DataFrame(rows)
        return table.sort_values("version", ascending=False, ignore_index=True) if rows else table

    def current(self, name: str) -> tuple[lightgbm.Booster, dict]:
        """The model the dashboards score with (the newest version), checked against its sha256."""
        versions = self.registry(name)["version"] if self.ws.path("models", name).exists() else []
        newest = int(versions.iloc[0]) if len(versions) else None
        return _load(self.catalog_path, self.workspace, name, newest)

    def feature_importance(self, meta: dict) -> pd.DataFrame:
        gain = pd.Series(meta.get("feature_importance", {}), name="gain", dtype="float64")
        table = gain.rename_axis("feature").reset_index()
        return table.sort_values("gain", ascending=False, ignore_index=True)

    def feature_defaults(self, name: str, meta: dict) -> dict[str, object]:
        """Where the what-if form starts: medians of the numeric features in the training
        source (the version the model was trained on), the first level of categorical ones."""
        spec = self.catalog.models[name]
        numeric = tuple(f for f in spec.features if f not in meta["categories"])
        path = table_path(self.catalog, self.ws, spec.source)
        version = meta.get("data", {}).get("source_version")
        defaults: dict[str, object] = dict(_feature_defaults(str(path), version, numeric))
        defaults |= {c: levels[0] for c, levels in meta["categories"].items()}
        return defaults

    def predict(self, name: str, values: dict[str, object]) -> float:
        """Probability of the positive class for one row of feature values."""
        booster, meta = self.current(name)
        spec = self.catalog.models[name]
        row = encode_features(pd.DataFrame([values]), spec, meta["categories"])
        return float(booster.predict(row[list(spec.features)])[0])


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
        for feature in self.store.catalog.models[self.model].features:
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
