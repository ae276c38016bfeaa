"""Helpers for tests of the served dashboards: start `workbench serve`, sign in over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from workbench.serving import add_user

USERS = {"ada": ["engineer"], "bob": ["business"]}
# Playwright's own browser download is not reachable here: launch the distribution's chromium.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until every Bokeh document on the page has synced with the server: a widget
    changed before that may be overwritten by the initial state."""
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents.every(d => d.is_idle)",
        timeout=timeout_ms,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    passwords: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def session(self, user: str | None = None) -> requests.Session:
        """An HTTP session, signed in as ``user`` when given."""
        http = requests.Session()
        if user:
            done = http.post(
                f"{self.url}/login",
                data={"username": user, "password": self.passwords[user]},
                allow_redirects=False,
                timeout=30,
            )
            assert done.status_code == 302 and "user" in http.cookies, done.text[:300]
        return http

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)


def credentials(folder: Path) -> tuple[Path, dict[str, str]]:
    """A credentials file with the test users and fresh random passwords."""
    path = folder / "users.yaml"
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    for user, roles in USERS.items():
        add_user(path, user, passwords[user], roles)
    return path, passwords


def start_server(folder: Path, *args: str, env: dict | None = None, timeout: float = 120) -> Server:
    """`workbench serve ARGS` on a free loopback port, once it answers HTTP."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from workbench.cli import app; app()", "serve"]
            + ["--port", str(port), *args],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"workbench serve exited {proc.returncode}:\n{server.output()}")
        try:
            requests.get(f"{server.url}/liveness-probe", timeout=5)
            return server
        except requests.ConnectionError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"workbench serve did not answer in {timeout} s:\n{server.output()}")


def page_token(http: requests.Session, url: str) -> str:
    """The Bokeh session token embedded in an app page (what the page's websocket presents)."""
    page = http.get(url, timeout=60)
    assert page.status_code == 200, (url, page.status_code)
    found = re.search(r'"token"\s*:\s*"([^"]+)"', page.text) or re.search(
        r'token\s*=\s*"([^"]+)"', page.text
    )
    assert found, f"no session token in {url}"
    return found.group(1)


def pull_document(server_url: str, app: str, cookies: dict, token: str) -> dict | int:
    """Open ``/APP/ws`` as a browser would (cookies, origin, token) and ask for the document:
    the document's JSON, or the HTTP status that refused the websocket."""
    return asyncio.run(_pull(server_url, app, cookies, token))


async def _pull(server_url: str, app: str, cookies: dict, token: str) -> dict | int:
    from bokeh.protocol import Protocol
    from bokeh.protocol.receiver import Receiver
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(
        f"{server_url.replace('http', 'ws', 1)}/{app}/ws",
        headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "Origin": server_url,
        },
    )
    try:
        conn = await websocket_connect(request, subprotocols=["bokeh", token])
    except HTTPClientError as exc:
        return exc.code
    try:
        receiver = Receiver(Protocol())

        async def receive():
            while True:
                fragment = await conn.read_message()
                if fragment is None:
                    return None
                message = await receiver.consume(fragment)
                if message is not None:
                    return message

        ack = await receive()
        if ack is None:
            return 0  # closed without a word
        request_doc = Protocol().create("PULL-DOC-REQ")
        for part in (request_doc.header_json, request_doc.metadata_json, request_doc.content_json):
            await conn.write_message(part)
        reply = await receive()
        return 0 if reply is None else reply.content["doc"]
    finally:
        conn.close()
