"""The models dashboard: registry and metrics, ROC and precision/recall curves, batch predictions,
drift over time, and a what-if form.

A model and a version are picked once (production by default); the registry, curves and drift
tabs show that version. The what-if form always scores with the model the dashboards serve
(:meth:`ModelStore.current`), and the predictions tab shows the latest batch scores.
"""

from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from workbench.views.models import METRICS, ModelStore
from workbench.views.predictions import PredictionStore
from workbench.views.predictions_explorer import PredictionsExplorer
from workbench.views.shell import MultiChoice, Select

_DASHED = {"color": "#999", "line_dash": "dashed"}
_ALERT = {"color": "#c62828", "line_dash": "dashed"}
_SHOWN_FEATURES = 6


class ModelsDashboard(pn.viewable.Viewer):
    """Tabs over one :class:`ModelStore` (and a :class:`PredictionStore` on the same catalog and
    workspace), with the what-if form beside them."""

    model = param.Selector(objects=[], label="Model")
    version = param.Selector(objects=[], label="Version")
    drift_features = param.ListSelector(default=[], objects=[], label="Features")

    def __init__(self, store: ModelStore | None = None, **params):
        self.store = store or ModelStore()
        self.param.model.objects = self.store.models()
        params.setdefault("model", self.param.model.objects[0])
        super().__init__(**params)
        self.inputs = pn.Column(sizing_mode="stretch_width")
        self.result = pn.pane.Markdown(sizing_mode="stretch_width")
        self.predictions = PredictionsExplorer(
            PredictionStore(catalog_path=self.store.catalog_path, workspace=self.store.workspace),
            model=self.model,
        )
        self._choices()
        self._build_form()

    @param.depends("model", watch=True)
    def _choices(self) -> None:
        versions = self.store.versions(self.model)
        self.param.version.objects = versions
        self.version = self.store.default_version(self.model)
        self.predictions.model = self.model
        self._drift_choices()  # also when the new model's default version has the same number

    @param.depends("version", watch=True, on_init=False)
    def _drift_choices(self) -> None:
        history = self.drift_data()
        features = list(dict.fromkeys(history.feature))
        self.param.drift_features.objects = features
        self.drift_features = default_drift_features(history)

    # -- the data each tab shows ----------------------------------------------------------------

    def metadata(self) -> dict:
        return self.store.metadata(self.model, self.version)

    def registry_data(self) -> pd.DataFrame:
        return self.store.registry(self.model)

    def importance_data(self) -> pd.DataFrame:
        return self.store.feature_importance(self.metadata())

    def curves_data(self) -> dict[str, pd.DataFrame] | None:
        return self.store.curves(self.model, self.version)

    def drift_data(self) -> pd.DataFrame:
        return self.store.drift_history(self.model, self.version)

    def performance_data(self) -> pd.DataFrame:
        return self.store.performance_history(self.model, self.version)

    # -- what if --------------------------------------------------------------------------------

    @param.depends("model", watch=True)
    def _build_form(self) -> None:
        _, meta = self.store.current(self.model)
        defaults = self.store.feature_defaults(self.model, meta)
        widgets = []
        for feature in meta["features"]:
            if feature in meta["categories"]:
                widget = Select(
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

    # -- views ----------------------------------------------------------------------------------

    @param.depends("model")
    def registry_view(self):
        table = self.registry_data()
        formatters = {m: NumberFormatter(format="0.000") for m in METRICS}
        formatters |= {c: NumberFormatter(format="0,0") for c in ("train_rows", "test_rows")}
        return pn.widgets.Tabulator(
            table, formatters=formatters, show_index=False, disabled=True, page_size=10
        )

    @param.depends("model", "version")
    def metrics_view(self):
        meta = self.metadata()
        m = meta["metrics"]
        if "roc_auc" not in m:
            return pn.pane.Markdown(f"Test metrics of version {meta['version']}: {m}")
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

    @param.depends("model", "version")
    def importance_view(self):
        top = self.importance_data().head(20).iloc[::-1]
        return top.hvplot.barh(
            x="feature", y="gain", title="feature importance (gain)", height=420, responsive=True
        )

    @param.depends("model", "version")
    def curves_view(self):
        meta = self.metadata()
        curves = self.curves_data()
        if curves is None:
            return pn.pane.Alert(not_recorded(self.model, meta), alert_type="warning")
        m, c = meta["metrics"], meta["curves"]

        def curve(name: str, x: str, y: str):
            return curves[name].hvplot.line(
                responsive=True,
                x=x,
                y=y,
                hover_cols=["threshold"],
                label=f"version {meta['version']}",
            )

        roc = curve("roc", "fpr", "tpr") * hv.Curve([(0, 0), (1, 1)], label="chance").opts(
            **_DASHED
        )
        pr = curve("pr", "recall", "precision") * hv.HLine(
            c["positives"] / c["rows"], label="base rate"
        ).opts(**_DASHED)
        common = {"height": 380, "responsive": True, "legend_position": "bottom_right"}
        note = pn.pane.Markdown(
            f"On the {c['rows']:,} test rows ({c['positives']:,} positive) that version "
            f"{meta['version']} was evaluated on at training; {len(curves['roc'])} and "
            f"{len(curves['pr'])} points of scikit-learn's curves. Hover for the threshold."
        )
        return pn.Column(
            note,
            pn.Row(
                roc.opts(
                    title=f"ROC curve, AUC {m['roc_auc']:.3f}",
                    xlabel="false positive rate",
                    ylabel="true positive rate",
                    **common,
                ),
                pr.opts(
                    title=f"precision/recall, base rate {c['positives'] / c['rows']:.1%}",
                    xlabel="recall",
                    ylabel="precision",
                    **common,
                ),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    @param.depends("model", "version", "drift_features")
    def drift_view(self):
        history = self.drift_data()
        if history.empty:
            return pn.pane.Alert(no_drift_reports(self.model, self.version), alert_type="info")
        chosen = history[history.feature.isin(self.drift_features)]
        threshold = history.groupby("window", sort=False)["threshold"].first().reset_index()
        lines = chosen.hvplot.line(
            responsive=True, x="window", y="psi", by="feature", hover_cols=["drifted"]
        )
        points = chosen.hvplot.scatter(
            responsive=True, x="window", y="psi", by="feature", hover_cols=["rows"]
        )
        alert = threshold.hvplot.line(
            responsive=True, x="window", y="threshold", label="alert threshold"
        ).opts(**_ALERT)
        psi_chart = (lines * points * alert).opts(
            title="PSI per feature per monitoring window",
            ylabel="PSI",
            height=360,
            responsive=True,
            legend_position="right",
            xrotation=30,
        )
        # Colours stop at 5x the threshold: calendar features (ignored) reach PSI 8 by design.
        heat = history.hvplot.heatmap(
            responsive=True,
            x="window",
            y="feature",
            C="psi",
            cmap="Reds",
            clim=(0, 5 * float(threshold.threshold.max())),
            hover_cols=["drifted", "ignored"],
            title="PSI of every feature (ignored ones never alert)",
            height=80 + 18 * history.feature.nunique(),
        )
        charts = [psi_chart, self.performance_view(), heat.opts(xrotation=30)]
        return pn.Column(
            MultiChoice.from_param(self.param.drift_features),
            *(pn.panel(c, sizing_mode="stretch_width") for c in charts),
            sizing_mode="stretch_width",
        )

    def performance_view(self):
        perf = self.performance_data()
        if perf.empty:
            return pn.pane.Markdown("No monitoring window of this version had known outcomes.")
        metric = perf.metric.iloc[0]
        value = perf.hvplot.line(
            responsive=True, x="window", y="value", label=f"{metric} of the window"
        )
        dots = perf.hvplot.scatter(responsive=True, x="window", y="value", hover_cols=["decayed"])
        ref = perf.hvplot.line(responsive=True, x="window", y="reference", label="test rows").opts(
            **_DASHED
        )
        alert = perf.hvplot.line(
            responsive=True, x="window", y="alert_at", label="alert level"
        ).opts(**_ALERT)
        return (value * dots * ref * alert).opts(
            title=f"{metric} per monitoring window, against the test rows",
            ylabel=metric,
            height=300,
            responsive=True,
            legend_position="right",
            xrotation=30,
        )

    def __panel__(self):
        whatif = pn.Column(
            pn.pane.Markdown(
                "### What if\nChange the features below; the model scores the record."
            ),
            self.result,
            self.inputs,
            css_classes=["whatif"],
            sizing_mode="stretch_width",
        )
        tabs = pn.Tabs(
            (
                "Registry",
                pn.Column(self.registry_view, self.metrics_view, self.importance_view),
            ),
            ("Curves", pn.Column(self.curves_view, sizing_mode="stretch_width")),
            ("Predictions", self.predictions),
            ("Drift", pn.Column(self.drift_view, sizing_mode="stretch_width")),
            dynamic=True,
            sizing_mode="stretch_width",
        )
        pickers = pn.Row(
            Select.from_param(self.param.model),
            Select.from_param(self.param.version),
            sizing_mode="stretch_width",
        )
        return pn.Row(
            pn.Column(pickers, tabs, sizing_mode="stretch_width"),
            pn.Column(whatif, width=340),
            sizing_mode="stretch_width",
        )


def default_drift_features(history: pd.DataFrame) -> list[str]:
    """The features worth a line: those that drifted in some window, else the largest PSIs."""
    if history.empty:
        return []
    peak = history.groupby("feature")["psi"].max().sort_values(ascending=False)
    drifted = set(history.loc[history.drifted, "feature"])
    chosen = [f for f in peak.index if f in drifted][:_SHOWN_FEATURES]
    return chosen or peak.index[:_SHOWN_FEATURES].tolist()


def not_recorded(name: str, meta: dict) -> str:
    if meta.get("task") == "regression":
        return (
            f"Version {meta['version']} of `{name}` is a regressor: ROC and precision/recall "
            "curves are for classifiers."
        )
    return (
        f"ROC and precision/recall curves were not recorded for version {meta['version']} of "
        f"`{name}`: it was registered before training kept them, and the dashboard does not "
        f"score the test rows again. Train a new version (`workbench model train {name}`) "
        "to have them."
    )


def no_drift_reports(name: str, version: int) -> str:
    return (
        f"No drift reports for version {version} of `{name}` yet. Check a window of rows with "
        f"`workbench model monitor {name} --from START --to END`; one report per window (a "
        "month at a time, say) makes the history shown here."
    )
