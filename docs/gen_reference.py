"""Reference pages generated from the code at build time (a mkdocs hook, see mkdocs.yml).

- ``reference/catalog.md``: every model of ``data_catalog.yaml``, from the pydantic models' JSON
  schema (``workbench.catalog.models.Catalog.model_json_schema()``).
- ``reference/cli.md``: every ``workbench`` command, walked from the Typer app
  (``typer.main.get_command(workbench.cli.app)``): usage, help, arguments and options.
- ``reference/configuration.md``: the packaged defaults, ``workbench/workbench.yaml``, as shipped.

The pages are added to the build as generated files and never written into ``docs/``, so they
cannot go stale in git. To look at them without building the site::

    python docs/gen_reference.py OUTDIR
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


# --- catalog reference ---------------------------------------------------------------------------


def _anchor(name: str) -> str:
    return f"[{name}](#{name.lower()})"


def _type_of(prop: dict[str, Any]) -> str:
    """A short human type for one JSON-schema property, with links to the models it refers to."""
    if "$ref" in prop:
        return _anchor(prop["$ref"].rsplit("/", 1)[-1])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(_type_of(p) for p in prop[key])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"map of name to {_type_of(values)}" if isinstance(values, dict) else "map"
    text = _JSON_TYPES.get(kind, kind or "any")
    limits = [f"{op} {prop[k]}" for k, op in _LIMITS.items() if k in prop]
    if "pattern" in prop:
        limits.append(f"matching `{prop['pattern']}`")
    return f"{text} ({', '.join(limits)})" if limits else text


_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_LIMITS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default_of(name: str, prop: dict[str, Any], required: set[str]) -> str:
    if name in required:
        return "*required*"
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    return "*empty*" if prop.get("type") in ("array", "object") else "*optional*"


def _refs(schema: dict[str, Any]) -> Iterator[str]:
    """Model names referred to by a schema, in the order they appear."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[-1]
        for key, value in schema.items():
            if key != "discriminator":
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def _model_section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    if schema.get("description"):
        lines += [inspect.cleandoc(schema["description"]), ""]
    props = schema.get("properties", {})
    if not props:
        return [*lines, "No fields.", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    for field, prop in props.items():
        cells = [f"`{field}`", _type_of(prop), _default_of(field, prop, required)]
        cells.append(_cell(prop.get("description", "")))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def catalog_reference() -> str:
    """Markdown for every model of the catalog, the top-level ``Catalog`` first."""
    from workbench.catalog.models import Catalog

    schema = Catalog.model_json_schema()
    defs = schema.pop("$defs", {})
    order = ["Catalog"]
    queue = [schema]
    while queue:
        for ref in _refs(queue.pop(0)):
            if ref not in order:
                order.append(ref)
                queue.append(defs[ref])
    order += sorted(set(defs) - set(order))
    lines = [
        "# Catalog reference",
        "",
        "Every key `data_catalog.yaml` accepts, generated from the pydantic models in",
        "`workbench/catalog/models.py` and `workbench/catalog/learning.py` when the site is built.",
        "Unknown keys are refused, so a misspelt key is an error that names it.",
        "`workbench catalog check` reports each mistake with its file, line and key path.",
        "",
    ]
    for name in order:
        lines += _model_section(name, schema if name == "Catalog" else defs[name])
    return "\n".join(lines)


# --- CLI reference -------------------------------------------------------------------------------


def _subcommands(command: Any) -> dict[str, Any]:
    # Typer ships its own copy of click, so test for the attribute instead of click.Group.
    return getattr(command, "commands", None) or {}


def _param_row(param: Any) -> str:
    opts = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    help_text = getattr(param, "help", None) or ""
    if not help_text and hasattr(param, "type_descriptor"):
        help_text = getattr(param.type_descriptor.parameter_info, "help", None) or ""
    if param.required:
        default = "*required*"
    elif param.default is None or callable(param.default):
        default = ""
    else:
        default = f"`{param.default}`"
    return f"| {opts} | {_value_of(param)} | {default} | {_cell(help_text)} |"


def _value_of(param: Any) -> str:
    """The Python type Typer parses the value into (empty for flags)."""
    if getattr(param, "is_flag", False):
        return ""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None:
        return _cell(getattr(param, "type", ""))
    return _cell(getattr(annotation, "__name__", str(annotation)).replace("typing.", ""))


def _command_section(command: Any, ctx: Any, depth: int) -> list[str]:
    path = ctx.command_path
    lines = [f"{'#' * min(depth, 4)} `{path}`", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help), ""]
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", usage, "```", ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    params = [p for p in params if p.name not in ("install_completion", "show_completion")]
    if params:
        lines += ["| argument or option | value | default | help |", "| --- | --- | --- | --- |"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    return lines


def _walk(command: Any, ctx: Any, depth: int) -> Iterator[list[str]]:
    yield _command_section(command, ctx, depth)
    for name, sub in _subcommands(command).items():
        if getattr(sub, "hidden", False):
            continue
        yield from _walk(sub, sub.context_class(sub, info_name=name, parent=ctx), depth + 1)


def cli_reference() -> str:
    """Markdown for every command of the ``workbench`` Typer app, groups before their commands."""
    import typer.main

    from workbench.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="workbench")
    lines = [
        "# CLI reference",
        "",
        "Every `workbench` command, generated from the Typer app (`workbench.cli:app`) when the",
        "site is built; `workbench COMMAND --help` prints the same. Exit codes: 0 success, 1 data",
        "failed its rules past the allowed threshold, 2 a usage or catalog error, 3 a runtime",
        "failure.",
        "",
    ]
    for section in _walk(root, ctx, 2):
        lines += section
    return "\n".join(lines)


# --- configuration reference --------------------------------------------------------------------


def configuration_reference() -> str:
    """The packaged defaults file, verbatim, with how to override it."""
    text = (REPO / "workbench" / "workbench.yaml").read_text()
    return "\n".join(
        [
            "# Configuration reference",
            "",
            "The packaged defaults, `workbench/workbench.yaml`, as shipped (copied in when the",
            "site is built). They are merged into `dask.config` under `workbench`. An explicit",
            "argument beats the config, which beats these defaults. Override a key in a Dask",
            "config file (`~/.config/dask/*.yaml`) or with an environment variable:",
            "`workbench.cluster.local.n-workers` is `DASK_WORKBENCH__CLUSTER__LOCAL__N_WORKERS`.",
            "",
            "```yaml",
            text.rstrip(),
            "```",
            "",
        ]
    )


PAGES: dict[str, Callable[[], str]] = {
    "reference/catalog.md": catalog_reference,
    "reference/cli.md": cli_reference,
    "reference/configuration.md": configuration_reference,
}


# --- mkdocs hook ---------------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the build (mkdocs >= 1.6 ``File.generated``)."""
    from mkdocs.structure.files import File

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    for path, render in PAGES.items():
        files.append(File.generated(config, path, content=render()))
    return files


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python docs/gen_reference.py OUTDIR")
    sys.path.insert(0, str(REPO))
    for path, render in PAGES.items():
        target = Path(argv[0]) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render())
        print(target)


if __name__ == "__main__":
    main(sys.argv[1:])
