"""The role check on every route of an app, not only on its page.

Panel checks ``authorize_callback`` when the app's page is requested, but a session can also be
created by opening the app's websocket with a session token, or by ``autoload.js``. Here each
per-app route (``/APP/ws``, ``/APP/autoload.js``, ``/APP/metadata``) refuses, before any session
exists, a user whose roles do not open the app. The websocket also refuses a token that was not
issued to the signed-in user of the connection (a token copied from someone else's page), and the
server signs session ids and tokens (:func:`session_kwargs`), so a token made by hand is refused
by Bokeh's signature check too.
"""

from __future__ import annotations

import logging
import os
import secrets

import panel as pn
from bokeh.server import urls
from bokeh.server.views.metadata_handler import MetadataHandler
from bokeh.util.token import check_token_signature, get_token_payload
from panel.io.server import AutoloadJsHandler, WSHandler
from tornado.web import decode_signed_value

log = logging.getLogger(__name__)

SECRET_ENV = "WORKBENCH_SERVE_SECRET"  # noqa: S105 (the name of a variable, not a secret)
SERVED_KEY = "workbench.served"


def session_kwargs() -> dict:
    """Bokeh server arguments that sign session ids and tokens with the server's secret:
    ``WORKBENCH_SERVE_SECRET``, or a random secret for this process (never the command line)."""
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    return {"sign_sessions": True, "secret_key": secret.encode("utf-8")}


def refusal(handler, user: str | None) -> str | None:
    """Why ``user`` may not use ``handler``'s route, or None when they may."""
    served = pn.state.cache.get(SERVED_KEY)
    if served is None or served.policy is None:
        return None
    if not served.policy.allows(user, handler.request.path):
        return f"{user!r} has no role that opens {handler.request.path}"
    return None


def _token_user(token: str) -> str | None:
    """The signed-in user of the page the token was issued with (its signed ``user`` cookie)."""
    cookie = (get_token_payload(token).get("cookies") or {}).get("user")
    if not cookie or not pn.config.cookie_secret:
        return None
    user = decode_signed_value(pn.config.cookie_secret, "user", cookie)
    return user.decode("utf-8") if user else None


def _refuse(handler, reason: str) -> None:
    log.warning("refused %s %s: %s", handler.request.method, handler.request.path, reason)
    handler.set_status(403)
    handler.finish("refused: this account may not open this app")


class GuardedWSHandler(WSHandler):
    """The app websocket: role, token signature and token owner checked before the handshake."""

    async def prepare(self):
        await super().prepare()
        if self._finished:
            return
        reason = refusal(self, self.current_user) or self._token_problem()
        if reason:
            _refuse(self, reason)

    def _token_problem(self) -> str | None:
        offered = self.request.headers.get("Sec-WebSocket-Protocol", "")
        parts = [p.strip() for p in offered.split(",")]
        if len(parts) != 2 or parts[0] != "bokeh":
            return "no session token offered"
        token = parts[1]
        app = self.application
        try:
            if not check_token_signature(token, app.secret_key, app.sign_sessions):
                return "the session token is not signed by this server"
            owner = _token_user(token)
        except Exception:  # a malformed token: Bokeh's decoder raises several kinds
            return "the session token cannot be read"
        served = pn.state.cache.get(SERVED_KEY)
        if served is not None and served.policy is not None and owner != self.current_user:
            return f"the session token was issued to {owner!r}, not {self.current_user!r}"
        return None


class GuardedAutoloadJsHandler(AutoloadJsHandler):
    """``autoload.js`` creates a session: the app's roles apply."""

    async def prepare(self):
        await super().prepare()
        reason = refusal(self, self.current_user)
        if reason:
            _refuse(self, reason)


class GuardedMetadataHandler(MetadataHandler):
    async def prepare(self):
        await super().prepare()
        reason = refusal(self, self.current_user)
        if reason:
            _refuse(self, reason)


_GUARDED = {
    r"/ws": GuardedWSHandler,
    r"/autoload.js": GuardedAutoloadJsHandler,
    r"/metadata": GuardedMetadataHandler,
}


def guard_app_routes() -> None:
    """Use the guarded handlers for every app's routes of the server about to start.

    Bokeh builds each app's routes from ``bokeh.server.urls.per_app_patterns`` when the server
    starts; Panel replaces entries of that list the same way to install its own handlers.
    """
    urls.per_app_patterns[:] = [
        (suffix, _GUARDED.get(suffix, handler)) for suffix, handler in urls.per_app_patterns
    ]
