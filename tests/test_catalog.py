"""The catalog loads, and every kind of mistake gets a message naming the key path and line."""

from __future__ import annotations

import textwrap

import pytest

import workbench as wb
from workbench.catalog import columns_of, parse_catalog

from .conftest import DEMO_CATALOG

GOOD = """\
version: 1
datasets:
  a:
    zone: lake
    source: {path: a.csv}
    schema: {k: string, v: float}
    rules:
      - {rule: not_null, columns: [k]}
  b:
    zone: curated
    from: a
    derived:
      big: "v > 10"
"""


def _error(text: str) -> str:
    with pytest.raises(wb.CatalogError) as info:
        parse_catalog(textwrap.dedent(text), "cat.yaml")
    return str(info.value)


def test_demo_catalog_loads():
    catalog = wb.load_catalog(DEMO_CATALOG)
    assert set(catalog.datasets) == {
        "airlines",
        "airports",
        "planes",
        "weather",
        "flights",
        "flights_enriched",
    }
    assert "flight_delays" in catalog.cubes and "departure_delay" in catalog.models
    cols = columns_of(catalog, "flights_enriched")
    assert {"temp", "plane_year", "airline_name", "dest_name", "dep_delayed"} <= set(cols)


def test_good_small_catalog():
    catalog = parse_catalog(GOOD, "cat.yaml")
    assert columns_of(catalog, "b") == ["k", "v", "big"]


def test_yaml_syntax_error_names_line_and_column():
    msg = _error(GOOD.replace("zone: curated", "zone: [curated"))
    assert "cat.yaml:" in msg and "YAML syntax error" in msg
    line = int(msg.split("cat.yaml:")[1].split(":")[0])
    assert 11 <= line <= 14


def test_unknown_key_names_path_and_line():
    msg = _error(GOOD.replace("    zone: curated", "    zone: curated\n    form: a"))
    assert "datasets.b.form" in msg and "cat.yaml:11" in msg and "remove it" in msg


def test_wrong_type_names_path():
    msg = _error(GOOD.replace("v: float", "v: decimal"))
    assert "datasets.a.schema.v" in msg and "cat.yaml:6" in msg


def test_unknown_rule_lists_the_known_ones():
    msg = _error(GOOD.replace("rule: not_null", "rule: not_empty"))
    assert "datasets.a.rules[0]" in msg and "not_null" in msg and "between" in msg


def test_reference_to_missing_dataset():
    msg = _error(GOOD.replace("from: a", "from: c"))
    assert "datasets.b.from" in msg and "'c'" in msg and "known: a, b" in msg


def test_dependency_cycle_is_named():
    text = GOOD + '      x: "v"\n  c:\n    zone: curated\n    from: b\n'
    text = text.replace("from: a", "from: c")
    msg = _error(text)
    assert "cycle" in msg and "b" in msg and "c" in msg


def test_unknown_column_lists_columns():
    msg = _error(GOOD.replace("columns: [k]", "columns: [kk]"))
    assert "datasets.a.rules[0]" in msg and "'kk' is not a column of a" in msg and "k, v" in msg


def test_bare_on_key_explains_yaml_booleans():
    text = GOOD + "    joins:\n      - {dataset: a, on: k}\n"
    msg = _error(text)
    assert "quote the key" in msg


def test_undefined_variable(monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    msg = _error(GOOD.replace("path: a.csv", 'path: "${NOPE_NOT_SET}/a.csv"'))
    assert "NOPE_NOT_SET" in msg


def test_variable_with_default_and_env(monkeypatch):
    text = GOOD.replace("path: a.csv", 'path: "${DATA_DIR:-/data}/a.csv"')
    monkeypatch.delenv("DATA_DIR", raising=False)
    assert parse_catalog(text).datasets["a"].source.path == "/data/a.csv"
    monkeypatch.setenv("DATA_DIR", "/elsewhere")
    assert parse_catalog(text).datasets["a"].source.path == "/elsewhere/a.csv"


def test_yaml_tags_are_refused():
    msg = _error(GOOD.replace("version: 1", "version: !!python/object/apply:os.system ['true']"))
    assert "YAML" in msg


def test_accessors_return_entries_and_one_not_found_error_lists_the_known_names():
    catalog = wb.load_catalog(DEMO_CATALOG)
    assert catalog.dataset("flights") is catalog.datasets["flights"]
    assert catalog.cube("flight_delays") is catalog.cubes["flight_delays"]
    assert catalog.model("departure_delay") is catalog.models["departure_delay"]
    assert catalog.feature_set("flight_features") is catalog.features["flight_features"]
    for accessor, error, known in [
        (catalog.dataset, wb.DatasetNotFound, "flights"),
        (catalog.cube, wb.CubeError, "flight_delays"),
        (catalog.model, wb.DatasetNotFound, "departure_delay"),
        (catalog.feature_set, wb.DatasetNotFound, "flight_features"),
    ]:
        with pytest.raises(error, match=f"'nope'.*known: .*{known}") as caught:
            accessor("nope")
        assert caught.value.exit_code == 2 and isinstance(caught.value, wb.DatasetNotFound)


JOINS = """\
version: 1
datasets:
  a:
    zone: lake
    source: {path: a.csv}
    schema: {k: string, v: float}
  c:
    zone: lake
    source: {path: c.csv}
    schema: {k: string, tag: {type: string, tags: [pii]}, w: float}
  only_matching:
    zone: curated
    from: a
    joins: [{dataset: c, keys: [k], how: inner, columns: []}]
  renamed:
    zone: curated
    from: a
    joins: [{dataset: c, keys: [k], columns: {w: weight}}]
  everything:
    zone: curated
    from: a
    joins: [{dataset: c, keys: [k]}]
"""


def test_the_columns_a_join_brings_are_decided_in_one_place():
    from workbench.privacy import pii_columns

    catalog = parse_catalog(JOINS, "cat.yaml")
    right = columns_of(catalog, "c")
    brought = {n: catalog.dataset(n).joins[0].column_map(right) for n in catalog.datasets
               if catalog.dataset(n).zone == "curated"}  # fmt: skip
    assert brought == {
        "only_matching": {},  # an empty list brings nothing: the join only filters rows
        "renamed": {"w": "weight"},
        "everything": {"tag": "tag", "w": "w"},  # every column but the keys
    }
    assert columns_of(catalog, "only_matching") == ["k", "v"]
    assert columns_of(catalog, "renamed") == ["k", "v", "weight"]
    assert pii_columns(catalog, "only_matching") == []
    assert pii_columns(catalog, "everything") == ["tag"]
