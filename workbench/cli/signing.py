"""`workbench keys` (the signing key) and `workbench model verify / resign` (signatures)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from workbench.cli import (
    DEFAULT_CATALOG,
    CatalogOpt,
    JsonOpt,
    WorkspaceOpt,
    _open,
    _print_json,
    _reported,
    app,
    console,
    err,
    model_app,
)

keys_app = typer.Typer(
    help="The key that signs models, compiled forests and checkpoints (docs/signing.md).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(
    force: Annotated[
        bool, typer.Option(help="replace an existing key (what it signed fails)")
    ] = False,
) -> None:
    """Write a new random key to the key file (mode 0600); refuses to replace one."""
    from workbench.ml import signing

    with _reported():
        key = signing.init_key(force=force)
    console.print(f"key {key.key_id} written to {key.source} (mode 0600); back it up")
    _warn_if_env_wins()


@keys_app.command("show")
def keys_show(as_json: JsonOpt = False) -> None:
    """The current key's id and where it comes from, and the old keys still accepted; never
    the keys themselves."""
    from workbench.ml import signing

    with _reported():
        current = signing.current_key()
        accepted = signing.accepted_keys()
    out = {
        "key_id": current.key_id,
        "source": current.source,
        "old_key_ids": [k for k in accepted if k != current.key_id],
        "old_keys_file": str(signing.old_keys_file()),
    }
    if as_json:
        _print_json(out)
        return
    console.print(f"key id {out['key_id']} from {out['source']}")
    console.print(f"old keys accepted: {', '.join(out['old_key_ids']) or 'none'}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Keep the key file's key as an old key and write a new one. Then sign every version
    again with `workbench model resign NAME`, and retire the old key."""
    from workbench.ml import signing

    with _reported():
        old, new = signing.rotate_key()
    console.print(
        f"new key {new.key_id}; {old.key_id} kept in {signing.old_keys_file()}. Next: "
        f"`workbench model resign NAME` for each model, then `workbench keys retire {old.key_id}`"
    )
    _warn_if_env_wins()


@keys_app.command("retire")
def keys_retire(key_id: str) -> None:
    """Stop accepting the old key KEY_ID: what only it signed is refused from now on."""
    from workbench.ml import signing

    with _reported():
        signing.retire_key(key_id)
    console.print(f"key {key_id} retired")


def _warn_if_env_wins() -> None:
    from workbench.ml import signing

    if signing.KEY_ENV in os.environ:
        err.print(f"note: {signing.KEY_ENV} is set and wins over the key file")


@model_app.command("verify")
def model_verify(
    name: str,
    version: Annotated[int | None, typer.Option(help="one version (default: all)")] = None,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the signatures of NAME's versions and compiled forests; exit 3 if any fails."""
    from workbench.ml.registry import verify_model

    with _reported():
        _, ws = _open(catalog, workspace)
        rows = verify_model(ws, name, version)
    if as_json:
        _print_json(rows)
    else:
        table = Table("version", "signature", "key id", "forests", "problem", title=name)
        for r in rows:
            mark = "[green]ok[/]" if r["ok"] else "[red]refused[/]"
            table.add_row(str(r["version"]), mark, r["key_id"] or "-", str(r["forests"]),
                          r["problem"] or "")  # fmt: skip
        console.print(table)
    if not all(r["ok"] for r in rows):
        raise typer.Exit(3)


@model_app.command("resign")
def model_resign(
    name: str,
    version: Annotated[int | None, typer.Option(help="one version (default: all)")] = None,
    trust_unsigned: Annotated[
        bool,
        typer.Option(help="also sign versions and aliases that have no signature (made before)"),
    ] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
) -> None:
    """Sign NAME's versions and aliases again with the current key once they verify under an
    accepted (old) key: the step after `workbench keys rotate`."""
    from workbench.ml.registry import resign_aliases, resign_version, resolve_version, verify_model

    with _reported():
        _, ws = _open(catalog, workspace)
        key_id = resign_aliases(ws, name, trust_unsigned=trust_unsigned)
        if key_id is not None:
            console.print(f"{name} aliases signed with key {key_id}")
        versions = [resolve_version(ws, name, version)] if version else None
        versions = versions or [r["version"] for r in verify_model(ws, name)]
        for v in versions:
            key_id = resign_version(ws, name, v, trust_unsigned=trust_unsigned)
            console.print(f"{name} v{v} signed with key {key_id}")
