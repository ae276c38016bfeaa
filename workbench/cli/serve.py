"""`workbench serve` (the dashboards) and `workbench user` (their basic-auth accounts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import DEFAULT_CATALOG, CatalogOpt, WorkspaceOpt, _reported, app, console

user_app = typer.Typer(help="Accounts of the dashboards (basic auth).", no_args_is_help=True)
app.add_typer(user_app, name="user")

CredentialsOpt = Annotated[
    Path | None,
    typer.Option(help="basic-auth credentials file (scrypt hashes, mode 600)"),
]


@app.command()
def serve(
    apps: Annotated[
        list[str] | None, typer.Argument(help="apps to serve (default: config serve.apps)")
    ] = None,
    address: Annotated[str | None, typer.Option(help="address to bind (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (5006)")] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(help="exact host[:port] browsers connect from; repeat for several"),
    ] = None,
    credentials: CredentialsOpt = None,
    oauth_provider: Annotated[
        str | None,
        typer.Option(help="Panel OAuth provider (github, google, azure, okta, generic, ...)"),
    ] = None,
    oauth_redirect_uri: Annotated[
        str | None, typer.Option(help="the callback URL registered with the provider")
    ] = None,
    allow_anonymous: Annotated[
        bool, typer.Option(help="serve a non-loopback address without authentication")
    ] = False,
    show_args: Annotated[
        bool, typer.Option(help="print the panel serve arguments and exit")
    ] = False,
    catalog: CatalogOpt = DEFAULT_CATALOG,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the dashboards with Panel: 127.0.0.1, exact origins, optional auth and roles.

    OAuth reads PANEL_OAUTH_KEY and PANEL_OAUTH_SECRET (and PANEL_OAUTH_ENCRYPTION,
    PANEL_COOKIE_SECRET, generated when unset) from the environment, never from the command line.
    """
    from workbench.serving import panel_arguments, serve_apps, serve_options

    with _reported():
        options = serve_options(
            catalog=catalog,
            workspace=workspace,
            apps=apps,
            address=address,
            port=port,
            origins=origin,
            credentials=credentials,
            oauth_provider=oauth_provider,
            oauth_redirect_uri=oauth_redirect_uri,
            allow_anonymous=allow_anonymous,
        )
        if show_args:
            print(" ".join(["panel", "serve", *panel_arguments(options)]))
            return
        auth = (
            f"basic auth ({options.credentials})"
            if options.credentials
            else f"OAuth ({options.oauth_provider})"
            if options.oauth_provider
            else "no authentication (loopback only)"
        )
        console.print(
            f"Serving {', '.join(options.apps)} on http://{options.address}:{options.port} "
            f"with {auth}; origins {', '.join(options.origins)}"
        )
        serve_apps(options)


@user_app.command("add")
def user_add(
    name: str,
    credentials: Annotated[Path, typer.Option(help="credentials file to create or update")],
    role: Annotated[
        list[str] | None, typer.Option(help="role, e.g. business or engineer; repeatable")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from standard input (scripts)")
    ] = False,
) -> None:
    """Add or replace a dashboard user; the password is prompted for and stored hashed."""
    from workbench.serving import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _reported():
        add_user(credentials, name, password, role or [])
    console.print(f"{name} ({', '.join(role or []) or 'no roles'}) saved in {credentials}")
