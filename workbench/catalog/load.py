"""Load ``data_catalog.yaml``: safe YAML, ``${var}`` interpolation, errors naming key and line."""

from __future__ import annotations

import graphlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workbench.catalog.expressions import expression_columns
from workbench.catalog.models import Catalog, Dataset, Expression, References
from workbench.errors import CatalogError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_catalog(path: str | os.PathLike[str] = "data_catalog.yaml") -> Catalog:
    """Read, interpolate and check a catalog file.

    Examples
    --------
    >>> catalog = load_catalog("data_catalog.yaml")  # doctest: +SKIP
    >>> sorted(catalog.datasets)  # doctest: +SKIP
    ['airlines', 'airports', 'flights', 'flights_enriched', 'planes', 'weather']
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(
            f"{path}: cannot read the catalog ({exc.strerror}). "
            "Pass --catalog PATH or run from the repository root."
        ) from exc
    return parse_catalog(text, path)


def parse_catalog(text: str, path: str | os.PathLike[str] = "<catalog>") -> Catalog:
    """Build a :class:`Catalog` from YAML text; ``path`` is used in messages and for paths."""
    path = Path(path)
    try:
        lines = _key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(
            f"{where}: YAML syntax error: {problem}. Fix the YAML at that line."
        ) from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: the catalog must be a mapping with a `datasets:` key.")
    raw = _interpolate(raw, {**raw.get("vars", {}), **os.environ}, path)
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_describe(exc, path, lines)) from exc
    _check_references(catalog, path, lines)
    catalog._path = path.resolve()
    return catalog


def _key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map every key path in the document to its 1-based line number."""
    out: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            loc = (*prefix, key.value)
            out[loc] = key.start_mark.line + 1
            out.update(_key_lines(value, loc))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*prefix, i)] = item.start_mark.line + 1
            out.update(_key_lines(item, (*prefix, i)))
    return out


def _interpolate(value: Any, variables: dict[str, str], path: Path) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, variables, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, variables, path) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables:
            return str(variables[name])
        if default is not None:
            return default
        raise CatalogError(
            f"{path}: `${{{name}}}` is not defined. Set the environment variable "
            f"{name}, add it under `vars:`, or write `${{{name}:-default}}`."
        )

    return _VAR.sub(repl, value)


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(lines: dict[tuple, int], loc: tuple) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _describe(exc: ValidationError, path: Path, lines: dict[tuple, int]) -> str:
    problems = []
    for err in exc.errors():
        # Drop pydantic's union-tag segments (e.g. 'not_null') so the path matches the YAML.
        loc = _without_tags(err["loc"])
        line = _line(lines, loc)
        where = f"{path}:{line}" if line else str(path)
        hint = {
            "extra_forbidden": "remove it or check its spelling",
            "missing": "add this key",
            "union_tag_invalid": "use one of the names listed",
            "invalid_key": "YAML 1.1 reads bare on/off/yes/no/true as booleans: quote the key",
        }.get(err["type"], "fix the value")
        problems.append(f"{where}: {_dotted(loc)}: {err['msg']} ({hint}).")
    return "invalid catalog:\n  " + "\n  ".join(problems)


def _without_tags(loc: tuple) -> tuple:
    """Drop the rule-type segment pydantic adds inside ``rules[i]`` so paths match the YAML."""
    return tuple(
        p
        for i, p in enumerate(loc)
        if not (i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] in ("rules", "dataset_rules"))
    )


def _refs(catalog: Catalog) -> Iterator[tuple[tuple, str]]:
    """Every (key path, dataset name) the catalog refers to."""
    for name, ds in catalog.datasets.items():
        if ds.from_:
            yield ("datasets", name, "from"), ds.from_
        for i, join in enumerate(ds.joins):
            yield ("datasets", name, "joins", i, "dataset"), join.dataset
        for i, rule in enumerate(ds.rules):
            if isinstance(rule, References):
                yield ("datasets", name, "rules", i, "dataset"), rule.dataset
    for name, cube in catalog.cubes.items():
        yield ("cubes", name, "source"), cube.source
        for dim_name, dim in cube.dimensions.items():
            if dim.labels:
                yield (
                    ("cubes", name, "dimensions", dim_name, "labels", "dataset"),
                    dim.labels.dataset,
                )
    for name, fs in catalog.features.items():
        yield ("features", name, "source"), fs.source


def _check_references(catalog: Catalog, path: Path, lines: dict[tuple, int]) -> None:
    problems = []
    known = ", ".join(sorted(catalog.datasets))
    for loc, target in _refs(catalog):
        if target not in catalog.datasets:
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: no dataset named "
                f"'{target}' (known: {known}). Declare it under `datasets:` or fix the name."
            )
    for name, model in catalog.models.items():
        if model.feature_set not in catalog.features:
            loc = ("models", name, "feature_set")
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: no feature set named "
                f"'{model.feature_set}' (known: {', '.join(catalog.features) or 'none'}). "
                "Declare it under `features:` or fix the name."
            )
    if problems:
        raise CatalogError("invalid catalog:\n  " + "\n  ".join(problems))
    graph = {name: ds.upstream() for name, ds in catalog.datasets.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        loc = ("datasets", cycle[0])
        raise CatalogError(
            f"{path}:{_line(lines, loc)}: datasets form a dependency cycle: "
            f"{' -> '.join(cycle)}. Break it by removing one of these references."
        ) from exc
    _check_columns(catalog, path, lines)


def expression_names(expr: str | None) -> list[str]:
    """The column names an expression reads, in order (parsed: never a keyword or method)."""
    return expression_columns(expr)


def columns_of(catalog: Catalog, name: str) -> list[str]:
    """The columns dataset ``name`` will have, derived from the declarations alone."""
    ds: Dataset = catalog.datasets[name]
    if ds.zone == "lake":
        return list(ds.schema_)
    cols = columns_of(catalog, ds.from_)
    for join in ds.joins:
        brought = join.column_map(columns_of(catalog, join.dataset)).values()
        cols += [new for new in brought if new not in cols]
    return cols + [c for c in ds.derived if c not in cols]


def _cube_level_problems(name: str, cube, path: Path, lines: dict[tuple, int]) -> list[str]:
    """Level names unique across the cube; aggregates and derived measures use known names."""
    problems, seen = [], {}
    for key, dim in cube.dimensions.items():
        for level in dim.level_names(key):
            if level in seen:
                loc = ("cubes", name, "dimensions", key)
                problems.append(
                    f"{path}:{_line(lines, loc)}: {_dotted(loc)}: level '{level}' is "
                    f"also a level of dimension '{seen[level]}'; rename one of them."
                )
            seen[level] = key
    for i, group in enumerate(cube.aggregates or []):
        loc = ("cubes", name, "aggregates", i)
        unknown = [lv for lv in group if lv not in seen]
        if unknown:
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: unknown levels "
                f"{unknown}; the cube's levels are {', '.join(seen)}."
            )
        dims = [seen[lv] for lv in group if lv in seen]
        if len(dims) != len(set(dims)):
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: keep one level per "
                "dimension in an aggregate."
            )
    known = set(cube.measures)
    for m_name, expr in cube.derived_measures.items():
        loc = ("cubes", name, "derived_measures", m_name)
        names = set(expression_names(expr))
        unknown = sorted(names - known)
        if unknown:
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: {unknown} are not "
                f"stored measures ({', '.join(known)}); derived measures combine "
                "stored ones so every roll-up stays exact."
            )
    return problems


def _check_columns(catalog: Catalog, path: Path, lines: dict[tuple, int]) -> None:
    problems = []

    def need(loc: tuple, column: str, dataset: str, have: list[str]) -> None:
        if column not in have:
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: '{column}' is not a "
                f"column of {dataset} (columns: {', '.join(have)})."
            )

    for name, ds in catalog.datasets.items():
        if ds.zone == "curated":
            have = columns_of(catalog, ds.from_)
            for i, join in enumerate(ds.joins):
                right = columns_of(catalog, join.dataset)
                # A join may use columns brought in by the joins before it.
                where = ds.from_ if i == 0 else f"{ds.from_} after joins[0..{i - 1}]"
                for k in join.left_keys:
                    need(("datasets", name, "joins", i), k, where, have)
                for k in join.right_keys:
                    need(("datasets", name, "joins", i), k, join.dataset, right)
                brought = join.column_map(right)
                for c in brought:
                    need(("datasets", name, "joins", i, "columns"), c, join.dataset, right)
                have = have + [c for c in brought.values() if c not in have]
            have = columns_of(catalog, name)
            for col, der in ds.derived.items():
                for c in der.inputs:
                    need(("datasets", name, "derived", col), c, name, have)
            # Derived columns are computed in order: an expression reads the ones before it.
            ready = [c for c in have if c not in ds.derived]
            for col, der in ds.derived.items():
                for c in expression_names(der.expr):
                    need(("datasets", name, "derived", col), c, name, ready)
                ready.append(col)
        for key, rules in (("rules", ds.rules), ("dataset_rules", ds.dataset_rules)):
            for i, rule in enumerate(rules):
                for c in getattr(rule, "columns", None) or [getattr(rule, "column", None)]:
                    if c is not None:
                        need(("datasets", name, key, i), c, name, list(ds.schema_))
        for i, rule in enumerate(ds.rules):
            if isinstance(rule, Expression):
                for c in expression_names(rule.expr):
                    need(("datasets", name, "rules", i, "expr"), c, name, columns_of(catalog, name))
            if isinstance(rule, References):
                need(
                    ("datasets", name, "rules", i, "key"),
                    rule.key,
                    rule.dataset,
                    columns_of(catalog, rule.dataset),
                )
    for name, cube in catalog.cubes.items():
        have = columns_of(catalog, cube.source)
        for dim_name, dim in cube.dimensions.items():
            need(("cubes", name, "dimensions", dim_name, "column"), dim.column, cube.source, have)
            for parent in dim.parents:
                need(("cubes", name, "dimensions", dim_name, "parents"), parent, cube.source, have)
        problems.extend(_cube_level_problems(name, cube, path, lines))
        for m_name, m in cube.measures.items():
            if m.column:
                need(("cubes", name, "measures", m_name, "column"), m.column, cube.source, have)
            for c in expression_names(m.where):
                need(("cubes", name, "measures", m_name, "where"), c, cube.source, have)
    for name, fs in catalog.features.items():
        have = columns_of(catalog, fs.source)
        loc = ("features", name)
        for key in ("columns", "keys"):
            for c in getattr(fs, key):
                need((*loc, key), c, fs.source, have)
        for c in [*fs.date_parts, *filter(None, [fs.split.column])]:
            need(loc, c, fs.source, have)
        need(loc, fs.label, f"{fs.source} or the derived features", [*have, *fs.derived])
        for lag_name, lag in fs.lags.items():
            for c in lag.inputs:
                need((*loc, "lags", lag_name), c, fs.source, have)
        for c in expression_names(fs.where):
            need((*loc, "where"), c, fs.source, have)
        ready = list(have)  # derived features are computed in order, after `where`
        for col, expr in fs.derived.items():
            for c in expression_names(expr):
                need((*loc, "derived", col), c, fs.source, ready)
            ready.append(col)
        clash = sorted(set(fs.derived) | set(fs.lags))
        clash = [c for c in clash if c in have]
        if clash:
            problems.append(
                f"{path}:{_line(lines, loc)}: {_dotted(loc)}: derived or lag features {clash} "
                f"reuse names of columns of {fs.source}; give them new names."
            )
    if problems:
        raise CatalogError("invalid catalog:\n  " + "\n  ".join(problems))
