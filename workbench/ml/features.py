"""Model inputs from a lake or curated table: features, label, and a time-based split."""

from __future__ import annotations

from dataclasses import dataclass

import dask.dataframe as dd
import pandas as pd

from workbench.catalog.load import columns_of, expression_names
from workbench.catalog.models import Catalog, Model
from workbench.io.delta import open_table
from workbench.io.workspace import Workspace
from workbench.zones.tables import read_dataset, table_path


@dataclass(frozen=True)
class TrainingData:
    """Lazy train and test frames, with what the model needs to encode new data the same way."""

    train: dd.DataFrame
    test: dd.DataFrame
    categories: dict[str, list[str]]
    source_version: int


def encode_features(
    df: pd.DataFrame, spec: Model, categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Numeric features as float64, categorical ones as pandas categories with fixed levels."""
    out = {}
    for col in spec.features:
        if col in categories:
            out[col] = pd.Categorical(df[col].astype("str"), categories=categories[col])
        else:
            out[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=df.index)


def _split_frame(df: pd.DataFrame, spec: Model, categories: dict[str, list[str]]) -> pd.DataFrame:
    if spec.where:
        df = df[df.eval(spec.where).fillna(False).astype(bool)]
    out = encode_features(df, spec, categories)
    out["__label"] = df[spec.label].fillna(False).astype("int64")
    out["__test"] = pd.to_datetime(df[spec.split.column]) >= pd.Timestamp(spec.split.test_from)
    return out


def training_data(catalog: Catalog, ws: Workspace, name: str) -> TrainingData:
    spec = catalog.models[name]
    version = open_table(table_path(catalog, ws, spec.source)).version()
    known = set(columns_of(catalog, spec.source))
    filters = [c for c in expression_names(spec.where) if c in known]
    columns = list(dict.fromkeys([*spec.features, spec.label, spec.split.column, *filters]))
    frame = read_dataset(catalog, ws, spec.source, columns=columns, version=version)
    levels = dd.compute(
        *[frame[c].dropna().astype("str").unique(split_out=1) for c in spec.categorical]
    )
    categories = {c: sorted(v.tolist()) for c, v in zip(spec.categorical, levels, strict=True)}
    prepared = frame.map_partitions(
        _split_frame, spec, categories, meta=_split_frame(frame._meta, spec, categories)
    )
    train = prepared[~prepared["__test"]].drop(columns="__test")
    test = prepared[prepared["__test"]].drop(columns="__test")
    return TrainingData(train, test, categories, version)
