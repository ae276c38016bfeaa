"""`workbench model`: train, tune, list, show, promote, roll back, score, predict, monitor."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from workbench.cli import (
    DEFAULT_CATALOG,
    CatalogOpt,
    ClusterOpt,
    JsonOpt,
    WorkspaceOpt,
    _open,
    _print_json,
    _reported,
    _session,
    console,
    err,
    model_app,
)

VersionOpt = Annotated[int | None, typer.Option(help="a registered version")]
AliasOpt = Annotated[str | None, typer.Option(help="candidate or production")]


def _metric_text(metrics: dict) -> str:
    keys = [k for k in ("roc_auc", "log_loss", "accuracy", "rmse", "mae", "r2") if k in metrics]
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys)


@model_app.command("train")
def model_train(
    name: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    no_promote: Annotated[bool, typer.Option(help="register as candidate only")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train NAME now (resuming a fit that was interrupted), register it as the candidate and
    promote it if it beats production."""
    from workbench.io.locks import target_lock
    from workbench.ml.train import train_model

    with (
        _session(catalog, workspace, cluster) as (cat, ws),
        target_lock(ws, "models", name, doing=f"model train {name}"),
    ):
        trained = train_model(cat, ws, name, promote=not no_promote, reason="model train")
    promotion = trained.promotion.to_dict() if trained.promotion else None
    out = {
        "version": trained.registered.version,
        "path": str(trained.registered.path),
        "metrics": trained.metrics,
        "fit": trained.registered.metadata["fit"],
        "promotion": promotion,
    }
    if as_json:
        _print_json(out)
        return
    console.print(f"[bold]{name}[/] v{out['version']}: {_metric_text(trained.metrics)}")
    if out["fit"].get("resumed_from"):
        console.print(f"resumed from checkpoint at step {out['fit']['resumed_from']}")
    if promotion:
        console.print(f"promotion: {promotion['reason']}")


@model_app.command("tune")
def model_tune(
    name: str,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the catalog's `tune:` space on the validation rows, then train the best
    configuration as a candidate (promoted only if it wins)."""
    from workbench.ml.tuning import tune_model

    with _session(catalog, workspace, cluster) as (cat, ws):
        result = tune_model(cat, ws, name)
    if as_json:
        _print_json(result.to_dict())
        return
    table = Table("trial", "params", result.metric, title=f"{name}: {result.method} search")
    for t in result.trials:
        table.add_row(str(t["trial"]), json.dumps(t["params"]), f"{t['score']:.4f}")
    console.print(table)
    console.print(
        f"best {json.dumps(result.best_params)} -> v{result.version} "
        f"(default {result.default_score:.4f}, best {result.best_score:.4f}); "
        f"trials in {result.trials_path}"
    )


@model_app.command("list")
def model_list(
    name: Annotated[str | None, typer.Argument(help="a model (default: all)")] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered versions with their aliases and test metrics."""
    from workbench.ml.registry import list_versions

    with _reported():
        cat, ws = _open(catalog, workspace)
        names = [name] if name else list(cat.models)
        rows = [{"model": n, **v} for n in names for v in list_versions(ws, n)]
    if as_json:
        _print_json(rows)
        return
    table = Table("model", "version", "aliases", "estimator", "features", "metrics", "registered")
    for r in rows:
        table.add_row(
            r["model"],
            str(r["version"]),
            ", ".join(r["aliases"]),
            str(r["estimator"]),
            f"v{r['feature_version']}",
            _metric_text(r["metrics"]),
            r["registered_at"][:19],
        )
    console.print(table)


@model_app.command("show")
def model_show(
    name: str,
    version: VersionOpt = None,
    alias: AliasOpt = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Metadata of one version (default: production): metrics, lineage, importance."""
    from workbench.ml.registry import alias_history, aliases, model_metadata

    with _reported():
        _, ws = _open(catalog, workspace)
        meta = model_metadata(ws, name, version, alias)
        meta = {k: v for k, v in meta.items() if k != "reference"}
        meta["alias_history"] = alias_history(ws, name)
    if as_json:
        _print_json(meta)
        return
    held = [a for a, v in aliases(ws, name).items() if v == meta["version"]]
    console.print(
        f"[bold]{name}[/] v{meta['version']} ({meta['estimator']}), registered "
        f"{meta.get('registered_at', '')[:19]}, aliases: {', '.join(held) or 'none'}; "
        f"trained because: {meta['reason']}",
        highlight=False,
    )
    console.print(f"data: {json.dumps(meta['data'])}")
    console.print(f"params: {json.dumps(meta['params'])}")
    console.print(f"test: {_metric_text(meta['metrics'])}")
    top = sorted(meta["feature_importance"].items(), key=lambda kv: -kv[1])[:10]
    table = Table("feature", "importance", title="Feature importance (top 10)")
    for feature, value in top:
        table.add_row(feature, f"{value:,.2f}")
    console.print(table)


@model_app.command("promote")
def model_promote(
    name: str,
    version: VersionOpt = None,
    force: Annotated[bool, typer.Option(help="promote even if it does not win")] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the candidate (or VERSION) production if it beats production on the same test
    rows by the catalog's margin; exit 1 when refused."""
    from workbench.ml.promotion import promote_model

    with _reported():
        cat, ws = _open(catalog, workspace)
        result = promote_model(cat, ws, name, version, force=force)
    if as_json:
        _print_json(result.to_dict())
    else:
        mark = "[green]promoted[/]" if result.promoted else "[red]not promoted[/]"
        console.print(f"{name} v{result.version} {mark}: {result.reason}")
    if not result.promoted and result.production_version != result.version:
        raise typer.Exit(1)


@model_app.command("rollback")
def model_rollback(
    name: str,
    alias: Annotated[str, typer.Option(help="the alias to move back")] = "production",
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
) -> None:
    """Move production (or --alias) back to the version it held before."""
    from workbench.ml.registry import rollback

    with _reported():
        _, ws = _open(catalog, workspace)
        version = rollback(ws, name, alias)
    console.print(f"{name}: {alias} is now v{version}")


@model_app.command("score")
def model_score(
    name: str,
    alias: Annotated[str, typer.Option(help="the alias to score with")] = "production",
    version: VersionOpt = None,
    input_dataset: Annotated[
        str | None, typer.Option("--input", help="a lake or curated dataset to score")
    ] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score rows in parallel into a new version of predictions/NAME."""
    from workbench.ml.score import score_batch

    with _session(catalog, workspace, cluster) as (cat, ws):
        result = score_batch(
            cat, ws, name, alias=alias, version=version, input_dataset=input_dataset
        )
    if as_json:
        _print_json(result.__dict__)
        return
    console.print(
        f"{result.rows:,} rows scored by {name} v{result.model_version} ({result.engine}) in "
        f"{result.seconds:.1f} s -> predictions/{name} version {result.predictions_version}"
    )


@model_app.command("compile")
def model_compile(
    name: str,
    alias: Annotated[str, typer.Option(help="the alias to compile")] = "production",
    version: VersionOpt = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compile a LightGBM model to native code for this host; batch scoring then uses it."""
    from workbench.ml.score import compile_native

    with _reported():
        cat, ws = _open(catalog, workspace)
        with console.status(f"compiling {name} (about a second per 10 trees)"):
            result = compile_native(cat, ws, name, alias=alias, version=version)
    if as_json:
        _print_json(result.__dict__)
        return
    console.print(
        f"{name} v{result.model_version} compiled in {result.seconds:.1f} s; it gives "
        f"LightGBM's scores on {result.check_rows:,} rows (largest difference "
        f"{result.max_difference:.1e}) -> {result.path}"
    )


@model_app.command("predict")
def model_predict(
    name: str,
    values: Annotated[list[str], typer.Argument(help="FEATURE=VALUE pairs")],
    alias: Annotated[str, typer.Option(help="the alias to use")] = "production",
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score one record given as FEATURE=VALUE pairs (missing features count as unknown and are
    listed; a name the model does not know is an error)."""
    from workbench.ml.score import predict_one

    record = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: write FEATURE=VALUE")
        try:
            record[key] = float(value)
        except ValueError:
            record[key] = value
    with _reported():
        _, ws = _open(catalog, workspace)
        _print_json(predict_one(ws, name, record, alias=alias, strict=True))


@model_app.command("monitor")
def model_monitor(
    name: str,
    start: Annotated[str | None, typer.Option("--from", help="first date of the window")] = None,
    end: Annotated[str | None, typer.Option("--to", help="date after the window")] = None,
    alias: Annotated[str, typer.Option(help="the alias to check")] = "production",
    every: Annotated[
        str | None,
        typer.Option(help="one report per day, week, month or quarter of --from..--to"),
    ] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    cluster: ClusterOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift of a window (default: the test rows) from the training data; exit 1 on an alert."""
    from workbench.ml.monitor import monitor_model

    if every is not None:
        _monitor_periods(name, start, end, every, alias, catalog, cluster, workspace, as_json)
        return
    with _session(catalog, workspace, cluster) as (cat, ws):
        report = monitor_model(cat, ws, name, start=start, end=end, alias=alias)
    if as_json:
        _print_json(report)
    else:
        table = Table(
            "feature", "PSI", "KS / chi2 p", "drifted", title=f"{name}: {report['window']}"
        )
        for f in report["features"]:
            test = f"{f['ks']:.3f}" if "ks" in f else f"{f.get('chi2_pvalue', float('nan')):.1e}"
            table.add_row(
                f["feature"], f"{f['psi']:.3f}", test, "[red]yes[/]" if f["drifted"] else "no"
            )
        console.print(table)
        console.print(f"prediction PSI {report['prediction']['psi']:.3f}")
        if report["performance"]:
            p = report["performance"]
            console.print(f"{p['metric']}: {p['window']:.4f} (reference {p['reference']:.4f})")
        status = (
            "[red]ALERT[/]: " + "; ".join(report["alerts"]) if report["alert"] else "[green]ok[/]"
        )
        console.print(f"{status}\nReport: {report['html']}")
    if report["alert"]:
        err.print(f"drift alert for {name}: {'; '.join(report['alerts'])}")
        raise typer.Exit(1)


def _monitor_periods(name, start, end, every, alias, catalog, cluster, workspace, as_json) -> None:
    from workbench.ml.monitor import monitor_periods

    if start is None or end is None:
        err.print(f"--every {every} needs --from and --to, e.g. --from 2013-09-01 --to 2014-01-01")
        raise typer.Exit(2)
    with _session(catalog, workspace, cluster) as (cat, ws):
        reports = monitor_periods(cat, ws, name, start=start, end=end, every=every, alias=alias)
    if as_json:
        _print_json(reports)
    else:
        table = Table("from", "to", "rows", "drifted", "performance", "alert", title=name)
        for r in reports:
            p = r["performance"]
            table.add_row(
                r["start"],
                r["end"],
                f"{r['window_rows']:,}",
                ", ".join(r["drifted"]) or "-",
                f"{p['metric']} {p['window']:.4f}" if p else "-",
                "[red]yes[/]" if r["alert"] else "no",
            )
        console.print(table)
    alerts = [r for r in reports if r["alert"]]
    if alerts:
        err.print(f"drift alerts for {name} in {len(alerts)} of {len(reports)} windows")
        raise typer.Exit(1)
