"""Column-level lineage, from the catalog's declarations alone.

Each column of a dataset names the columns of its step's inputs it comes from, and how:
copied, renamed by a join, derived by an expression (the columns the parsed expression reads),
aggregated into a cube measure, turned into a model feature. Columns a derivation reads from the
same table are followed back to where they came from, so ``plane_age: year - plane_year`` names
``lake/flights.year`` and ``lake/planes.year``.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.catalog.load import columns_of, expression_names
from workbench.catalog.models import Catalog, Derivation
from workbench.pipeline.steps import dataset_id

# OpenLineage's transformation subtypes: the value copied, computed from, or aggregated over.
IDENTITY, TRANSFORMATION, AGGREGATION = "IDENTITY", "TRANSFORMATION", "AGGREGATION"


@dataclass(frozen=True)
class ColumnSource:
    dataset: str  # a lineage name, e.g. lake/flights
    column: str

    def __str__(self) -> str:
        return f"{self.dataset}.{self.column}"


@dataclass(frozen=True)
class ColumnLineage:
    column: str
    sources: tuple[ColumnSource, ...]
    how: str  # for a person: "copied", "joined from planes.year", "derived: year - plane_year"
    subtype: str = IDENTITY


def column_lineage(catalog: Catalog, node: str) -> dict[str, ColumnLineage]:
    """Column -> where it comes from, for the dataset with lineage name ``node``; empty for
    datasets whose columns the catalog does not declare (sources, monitoring)."""
    zone, name = node.split("/", 1)
    build = _BY_ZONE.get(zone)
    return build(catalog, name) if build else {}


def _copied(names: list[str], dataset: str, how: str) -> dict[str, ColumnLineage]:
    return {c: ColumnLineage(c, (ColumnSource(dataset, c),), how) for c in names}


def _landing(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    return _copied(list(catalog.datasets[name].schema_), f"source/{name}", "as received")


def _lake(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    schema = catalog.datasets[name].schema_
    return {
        c: ColumnLineage(c, (ColumnSource(f"landing/{name}", c),), f"validated, read as {t}")
        for c, t in schema.items()
    }


def _quarantine(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    return _copied(list(catalog.datasets[name].schema_), f"landing/{name}", "rejected, as received")


def _curated(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    ds = catalog.datasets[name]
    base = dataset_id(catalog, ds.from_)
    out = _copied(columns_of(catalog, ds.from_), base, f"from {ds.from_}")
    for join in ds.joins:
        source = dataset_id(catalog, join.dataset)
        for old, new in join.column_map(columns_of(catalog, join.dataset)).items():
            how = f"joined from {join.dataset}.{old}" + (f" as {new}" if new != old else "")
            out.setdefault(new, ColumnLineage(new, (ColumnSource(source, old),), how))
    for column, derivation in ds.derived.items():
        reads = _derivation_reads(derivation)
        sources = _through(out, reads)
        out[column] = ColumnLineage(
            column, sources, f"derived: {_derivation_text(derivation)}", TRANSFORMATION
        )
    return out


def _derivation_reads(d: Derivation) -> list[str]:
    return expression_names(d.expr) if d.expr is not None else d.inputs


def _derivation_text(d: Derivation) -> str:
    if d.expr is not None:
        return d.expr
    if d.is_null is not None:
        return f"is_null({d.is_null})"
    return f"make_date({', '.join(d.make_date or [])})"


def _through(known: dict[str, ColumnLineage], reads: list[str]) -> tuple[ColumnSource, ...]:
    """The input columns behind ``reads``, columns of this same table followed back."""
    found: list[ColumnSource] = []
    for column in reads:
        found += known[column].sources if column in known else []
    return tuple(dict.fromkeys(found))


def _cube(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    cube = catalog.cubes[name]
    table = dataset_id(catalog, cube.source)
    out: dict[str, ColumnLineage] = {}
    for key, dim in cube.dimensions.items():
        sources = [ColumnSource(table, dim.column)]
        if dim.labels:
            labels = dataset_id(catalog, dim.labels.dataset)
            sources.append(ColumnSource(labels, dim.labels.label))
        out[key] = ColumnLineage(key, tuple(sources), f"dimension over {dim.column}")
        for parent in dim.parents:
            out[parent] = ColumnLineage(parent, (ColumnSource(table, parent),), f"level of {key}")
    for measure_name, m in cube.measures.items():
        reads = [m.column] if m.column else []
        reads += expression_names(m.where)
        sources = tuple(ColumnSource(table, c) for c in dict.fromkeys(reads))
        how = f"{m.agg}({m.column or 'rows'})" + (f" where {m.where}" if m.where else "")
        out[measure_name] = ColumnLineage(measure_name, sources, how, AGGREGATION)
    for measure_name, expr in cube.derived_measures.items():
        sources = _through(out, expression_names(expr))
        out[measure_name] = ColumnLineage(measure_name, sources, f"derived: {expr}", AGGREGATION)
    return out


def _features(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    fs = catalog.features[name]
    table = dataset_id(catalog, fs.source)
    out = _copied(list(dict.fromkeys([*fs.keys, *fs.columns, fs.label])), table, "copied")
    for column, expr in fs.derived.items():
        sources = tuple(ColumnSource(table, c) for c in expression_names(expr))
        out[column] = ColumnLineage(column, sources, f"derived: {expr}", TRANSFORMATION)
    for column, parts in fs.date_parts.items():
        for part in parts:
            new = f"{column}_{part}"
            how = f"{part} of {column}"
            out[new] = ColumnLineage(new, (ColumnSource(table, column),), how, TRANSFORMATION)
    for column, lag in fs.lags.items():
        sources = tuple(ColumnSource(table, c) for c in dict.fromkeys(lag.inputs))
        how = f"{lag.column} of the previous row by {', '.join(lag.by)} ordered by {lag.order_by}"
        out[column] = ColumnLineage(column, sources, how, TRANSFORMATION)
    return out


def _model(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    fs_name = catalog.models[name].feature_set
    fs = catalog.features[fs_name]
    out = _copied(fs.features, f"features/{fs_name}", "model input")
    out[fs.label] = ColumnLineage(
        fs.label, (ColumnSource(f"features/{fs_name}", fs.label),), "label learned", TRANSFORMATION
    )
    return out


def _predictions(catalog: Catalog, name: str) -> dict[str, ColumnLineage]:
    fs_name = catalog.models[name].feature_set
    keys = _copied(catalog.features[fs_name].keys, f"features/{fs_name}", "row key carried")
    inputs = tuple(
        ColumnSource(f"features/{fs_name}", c) for c in catalog.features[fs_name].features
    )
    how = f"scored by models/{name}"
    scored = {c: ColumnLineage(c, inputs, how, TRANSFORMATION) for c in ("score", "predicted")}
    return keys | scored


_BY_ZONE = {
    "landing": _landing,
    "lake": _lake,
    "quarantine": _quarantine,
    "curated": _curated,
    "cubes": _cube,
    "features": _features,
    "models": _model,
    "predictions": _predictions,
}
