"""``workbench serve``: Panel's ``panel serve`` with safe defaults, run in this process.

What it adds to ``panel serve``:

- the address defaults to 127.0.0.1 and the websocket origins are exact (``HOST:PORT``), never a
  wildcard; a non-loopback address needs authentication unless ``allow_anonymous`` is given;
- basic auth checks scrypt hashes from a credentials file (Panel's own basic auth compares
  plain-text passwords), OAuth uses Panel's providers with secrets read from the environment;
- a cookie secret (and an OAuth encryption key) are generated per process when the environment
  does not set one, so no secret is ever typed on a command line;
- signed session ids and tokens (``WORKBENCH_SERVE_SECRET`` or a per-process secret) and the role
  check on every route of an app, its websocket included (``guard.py``);
- throttled, audited sign-ins hashed off the event loop (``signin.py``);
- an ``authorize_callback`` with roles from config, and the validation reports served under
  ``/reports/`` to the roles that may open the quality app.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import panel as pn
from panel.auth import AUTH_PROVIDERS, BasicAuthProvider
from panel.command.serve import Serve
from panel.io.server import AuthenticatedStaticFileHandler
from tornado.web import HTTPError

from workbench import config
from workbench.errors import ServeError
from workbench.privacy import Viewer
from workbench.serving.access import AccessPolicy
from workbench.serving.guard import SERVED_KEY, guard_app_routes, session_kwargs
from workbench.serving.pages import write_pages
from workbench.serving.signin import Signin, SigninAudit, SigninThrottle, login_handler

log = logging.getLogger(__name__)

APPS_DIR = Path(__file__).resolve().parents[2] / "apps"
INDEX_APP = "index"
REPORTS_ROUTE = "reports"
OAUTH_ENV = ("PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET")
AUDIT_LOG = ("reports", "audit", "signin.jsonl")  # in the workspace, beside (not in) the reports


@dataclass(frozen=True)
class Served:
    """What the server process serves, for the sessions to read (the index page)."""

    apps: tuple[str, ...]
    policy: AccessPolicy | None


@dataclass(frozen=True)
class ServeOptions:
    """What to serve and how. Build with :func:`serve_options`, which checks the combination."""

    apps: tuple[str, ...]
    address: str
    port: int
    origins: tuple[str, ...]
    catalog: Path
    workspace: Path | None = None
    credentials: Path | None = None
    oauth_provider: str | None = None
    oauth_redirect_uri: str | None = None
    apps_dir: Path = APPS_DIR
    pages_dir: Path | None = None  # sign-in and denial pages (written by serve_apps)
    extra_panel_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def authenticated(self) -> bool:
        return bool(self.credentials or self.oauth_provider)

    def app_file(self, app: str) -> Path:
        return self.apps_dir / f"{app}.py"


def serve_options(
    *,
    catalog: Path,
    workspace: Path | None = None,
    apps: list[str] | None = None,
    address: str | None = None,
    port: int | None = None,
    origins: list[str] | None = None,
    credentials: Path | None = None,
    oauth_provider: str | None = None,
    oauth_redirect_uri: str | None = None,
    allow_anonymous: bool = False,
    apps_dir: Path = APPS_DIR,
) -> ServeOptions:
    """Check the options and fill the defaults (argument > ``workbench.serve.*`` config)."""
    address = config.get("serve.address", address)
    port = int(config.get("serve.port", port))
    chosen = list(apps or config.get("serve.apps"))
    missing = [a for a in chosen if not (apps_dir / f"{a}.py").is_file()]
    if missing:
        known = sorted(p.stem for p in apps_dir.glob("*.py"))
        raise ServeError(f"no app {missing} in {apps_dir}; choose from {', '.join(known)}.")
    if credentials and oauth_provider:
        raise ServeError("choose one of --credentials (basic auth) and --oauth-provider.")
    if oauth_provider:
        _check_oauth(oauth_provider)
    if not (credentials or oauth_provider or allow_anonymous or _is_loopback(address)):
        raise ServeError(
            f"refusing to serve on {address} without authentication: add --credentials FILE "
            "or --oauth-provider NAME, or --allow-anonymous if a proxy in front authenticates."
        )
    return ServeOptions(
        apps=tuple(chosen),
        address=address,
        port=port,
        origins=tuple(_origins(address, port, origins)),
        catalog=catalog.resolve(),
        workspace=workspace.resolve() if workspace else None,
        credentials=credentials.resolve() if credentials else None,
        oauth_provider=oauth_provider,
        oauth_redirect_uri=oauth_redirect_uri,
        apps_dir=apps_dir,
    )


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _origins(address: str, port: int, given: list[str] | None) -> list[str]:
    """Exact ``host[:port]`` origins; the address itself (and localhost on loopback) by default."""
    if given:
        bad = [o for o in given if "*" in o or "/" in o]
        if bad:
            raise ServeError(
                f"--origin {bad} must be an exact host[:port] such as dash.example.org:443, "
                "without wildcards or a scheme."
            )
        return list(dict.fromkeys(given))
    if address in ("0.0.0.0", "::"):  # noqa: S104 (refused here, not bound)
        raise ServeError(
            f"serving on {address} (every interface) needs --origin HOST:PORT naming the "
            "address users type in their browser."
        )
    found = [f"{address}:{port}"]
    if _is_loopback(address):
        found += [f"localhost:{port}", f"127.0.0.1:{port}"]
    return list(dict.fromkeys(found))


def _check_oauth(provider: str) -> None:
    if provider not in AUTH_PROVIDERS:
        raise ServeError(
            f"unknown OAuth provider {provider!r}; Panel knows {', '.join(AUTH_PROVIDERS)}."
        )
    unset = [name for name in OAUTH_ENV if not os.environ.get(name)]
    if unset:
        raise ServeError(
            f"OAuth with {provider} needs the environment variables {', '.join(unset)} "
            "(the client id and secret your provider issued); they are never read from the "
            "command line."
        )


def panel_arguments(options: ServeOptions) -> list[str]:
    """The ``panel serve`` arguments the options stand for (secrets excluded)."""
    args = [str(options.app_file(a)) for a in options.apps]
    args += ["--address", options.address, "--port", str(options.port)]
    for origin in options.origins:
        args += ["--allow-websocket-origin", origin]
    if INDEX_APP in options.apps:
        args += ["--index", INDEX_APP]
    if options.oauth_provider:
        args += ["--oauth-provider", options.oauth_provider]
    if options.oauth_redirect_uri:
        args += ["--oauth-redirect-uri", options.oauth_redirect_uri]
    if options.pages_dir and options.authenticated:
        pages = options.pages_dir
        args += ["--auth-template", str(pages / "denied.html")]
        args += ["--logout-template", str(pages / "logout.html")]
        if options.credentials:
            args += ["--basic-login-template", str(pages / "login.html")]
    # Load the apps (and the cubes they open) once at start, so the first visitor does not wait.
    args += ["--warm", "--num-procs", "1", *options.extra_panel_args]
    return args


class _CredentialsAuthProvider(BasicAuthProvider):
    """Panel's basic-auth pages, with throttled, audited checks against the policy's hashes."""

    def __init__(self, signin: Signin, **kwargs):
        self._signin = signin  # before Bokeh's __init__, which reads login_handler
        super().__init__(**kwargs)

    @property
    def login_handler(self):
        return login_handler(super().login_handler, self._signin)


class ReportHandler(AuthenticatedStaticFileHandler):
    """Validation reports (HTML and JSON) for the users who may open the quality app."""

    def initialize(self, path: str, policy: AccessPolicy | None = None, **kwargs) -> None:
        super().initialize(path, **kwargs)
        self._policy = policy

    async def get(self, path: str, include_body: bool = True) -> None:
        if self._policy is not None and not self._policy.allows(self.current_user, "/quality"):
            raise HTTPError(403, "this account may not open the validation reports")
        return await super().get(path, include_body=include_body)


def _command(
    options: ServeOptions, policy: AccessPolicy | None, reports: Path, signin: Signin | None
) -> type[Serve]:
    """Panel's ``serve`` command with signed sessions, our auth provider and the reports route."""

    class WorkbenchServe(Serve):
        def customize_kwargs(self, args, server_kwargs):
            kwargs = super().customize_kwargs(args, server_kwargs)
            kwargs.update(session_kwargs())
            if signin is not None:
                kwargs["auth_provider"] = _CredentialsAuthProvider(
                    signin,
                    login_template=args.basic_login_template,
                    logout_template=args.logout_template,
                    error_template=pn.config.auth_template,
                )
            reports.mkdir(parents=True, exist_ok=True)
            kwargs["extra_patterns"].append(
                (
                    rf"/{REPORTS_ROUTE}/(.*)",
                    ReportHandler,
                    {"path": str(reports), "policy": policy},
                )
            )
            return kwargs

    return WorkbenchServe


def _secrets(options: ServeOptions) -> None:
    """Use the environment's secrets, or generate them for this process (never from argv)."""
    if not os.environ.get("PANEL_COOKIE_SECRET"):
        pn.config.cookie_secret = secrets.token_urlsafe(32)
        log.info("generated a cookie secret: sign-ins end when the server stops")
    if options.oauth_provider and not os.environ.get("PANEL_OAUTH_ENCRYPTION"):
        os.environ["PANEL_OAUTH_ENCRYPTION"] = base64.urlsafe_b64encode(
            secrets.token_bytes(32)
        ).decode()
        pn.config.oauth_encryption_key = os.environ["PANEL_OAUTH_ENCRYPTION"].encode()


def serve_apps(options: ServeOptions) -> None:
    """Serve the apps until interrupted (blocks)."""
    from workbench.catalog import load_catalog
    from workbench.io.workspace import Workspace

    catalog = load_catalog(options.catalog)
    ws = Workspace.for_catalog(catalog, options.workspace)
    # The apps read these when their data stores are created, in this same process.
    os.environ["WORKBENCH_CATALOG"] = str(options.catalog)
    os.environ["WORKBENCH_WORKSPACE"] = str(ws.root)
    policy = AccessPolicy.from_config(options.credentials) if options.authenticated else None
    if policy is not None:
        pn.config.authorize_callback = _authorize_callback(policy)
    # Sessions find this here: the index page lists the apps served that the user may open.
    pn.state.cache[SERVED_KEY] = Served(options.apps, policy)
    _secrets(options)
    pages = Path(tempfile.mkdtemp(prefix="workbench-pages-"))
    write_pages(pages)
    options = replace(options, pages_dir=pages)
    signin = None
    if options.credentials:
        audit = SigninAudit(ws.path(*AUDIT_LOG))
        signin = Signin(policy, SigninThrottle.from_config(), audit)
    guard_app_routes()
    parser = argparse.ArgumentParser(prog="workbench serve")
    reports = ws.path("reports", "validation")
    command = _command(options, policy, reports, signin)(parser=parser)
    args = parser.parse_args(panel_arguments(options))
    command.invoke(args)


def current_viewer() -> Viewer:
    """The signed-in user of this session with their roles (anonymous without authentication)."""
    served = pn.state.cache.get(SERVED_KEY)
    user = pn.state.user
    if served is None or served.policy is None:
        return Viewer(user)
    return served.policy.viewer(user)


def _authorize_callback(policy: AccessPolicy):
    def authorize(user_info: dict | None, request_path: str) -> bool:
        user = pn.state.user or (user_info or {}).get("user")
        allowed = policy.allows(user, request_path)
        if not allowed:
            log.warning("refused %s access to %s", user, request_path)
        return allowed

    return authorize
