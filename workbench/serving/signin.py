"""Sign-in with a password: throttled, hashed off the event loop, and written to an audit log.

- Failed sign-ins are counted per user name and per client address. After
  ``workbench.serve.signin.free-attempts`` failures in a row, each further failure locks that name
  and that address for a doubling time (``backoff-seconds``, 2x, 4x, ... up to
  ``max-backoff-seconds``); while locked every attempt, the right password included, gets
  ``429 Too Many Requests`` with ``Retry-After`` and no password check at all.
- The scrypt check (~50 ms, 16 MiB) runs in a small thread pool, so sign-ins never stall the
  dashboards of users already signed in, and the pool bounds how many run at once.
- Every attempt is one JSON line in the audit log (who, when, from where, result), never the
  password.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import tornado.escape
from panel.auth import _validate_next_url
from panel.io.state import state
from tornado.ioloop import IOLoop

from workbench import config
from workbench.serving.access import AccessPolicy

SIGNED_IN, REFUSED, THROTTLED = "signed-in", "refused", "throttled"
_MAX_NAME = 128  # longer user names are cut in the counters and the log
_MAX_KEYS = 10_000  # counters kept before the forgotten ones are dropped


@dataclass
class _Failures:
    count: int = 0
    pending: int = 0  # checks running now
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class SigninThrottle:
    """Failures per key (``("user", name)``, ``("address", ip)``) with exponential lock-outs.

    Examples
    --------
    >>> now = [0.0]
    >>> throttle = SigninThrottle(free=2, backoff=1.0, cap=60, forget=900, clock=lambda: now[0])
    >>> keys = [("user", "ada"), ("address", "10.0.0.1")]
    >>> for _ in range(3):  # the third failure in a row starts a 1 s lock-out
    ...     throttle.attempt(keys), throttle.failed(keys)
    (0.0, None)
    (0.0, None)
    (0.0, None)
    >>> throttle.attempt(keys)
    1.0
    """

    free: int
    backoff: float
    cap: float
    forget: float
    clock: Callable[[], float] = time.monotonic
    _keys: dict[tuple[str, str], _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(cls) -> SigninThrottle:
        conf = config.get("serve.signin")
        return cls(
            free=int(conf["free-attempts"]),
            backoff=float(conf["backoff-seconds"]),
            cap=float(conf["max-backoff-seconds"]),
            forget=float(conf["forget-after-seconds"]),
        )

    def attempt(self, keys: Iterable[tuple[str, str]]) -> float:
        """Seconds to wait before trying again (the attempt is refused and not counted), or 0:
        the check may run, and :meth:`failed` or :meth:`succeeded` must follow. At most ``free``
        checks of one key run at once, so parallel guesses cannot outrun the count."""
        now = self.clock()
        with self._lock:
            entries = [self._entry(k, now) for k in keys]
            wait = max(e.locked_until - now for e in entries)
            if wait > 0:
                return wait
            if any(e.pending >= self.free for e in entries):
                return self.backoff
            for e in entries:
                e.pending += 1
            return 0.0

    def failed(self, keys: Iterable[tuple[str, str]]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                e = self._entry(key, now)
                e.pending, e.count, e.last = max(e.pending - 1, 0), e.count + 1, now
                if e.count > self.free:
                    lock = self.backoff * 2 ** (e.count - self.free - 1)
                    e.locked_until = now + min(lock, self.cap)

    def succeeded(self, user_key: tuple[str, str], other_keys: Iterable[tuple[str, str]]) -> None:
        """The right password clears the user's failures; an address keeps its record (signing
        in to one's own account must not wipe the guesses made from the same address)."""
        with self._lock:
            for key in (user_key, *other_keys):
                e = self._keys.get(key)
                if e is not None:
                    e.pending = max(e.pending - 1, 0)
            e = self._keys.get(user_key)
            if e is not None:
                e.count, e.locked_until = 0, 0.0

    def _entry(self, key: tuple[str, str], now: float) -> _Failures:
        e = self._keys.get(key)
        if e is None or (now - e.last > self.forget and now >= e.locked_until and not e.pending):
            if len(self._keys) >= _MAX_KEYS:
                self._drop_forgotten(now)
            e = self._keys[key] = _Failures(last=now)
        return e

    def _drop_forgotten(self, now: float) -> None:
        old = [k for k, e in self._keys.items() if now - e.last > self.forget and not e.pending]
        for k in old or list(self._keys)[: _MAX_KEYS // 10]:
            del self._keys[k]


@dataclass
class SigninAudit:
    """Sign-in attempts as JSON lines: time (UTC), user, address, result."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, user: str, address: str | None, result: str, **extra) -> None:
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "user": user,
            "address": address,
            "result": result,
            **extra,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")


@dataclass
class Signin:
    """What the login handler needs: the policy, the throttle, the audit log, the hash pool."""

    policy: AccessPolicy
    throttle: SigninThrottle
    audit: SigninAudit
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="workbench-signin")
    )

    async def check(self, user: str, password: str) -> bool:
        return await IOLoop.current().run_in_executor(
            self.pool, self.policy.check_password, user, password
        )


def login_handler(base: type, signin: Signin) -> type:
    """Panel's basic login handler (its pages and cookie) with :class:`Signin`'s checks."""

    class CredentialsLoginHandler(base):
        async def post(self) -> None:
            user = self.get_argument("username", "")[:_MAX_NAME]
            password = self.get_argument("password", "")
            address = self.request.remote_ip
            user_key, address_key = ("user", user), ("address", str(address))
            wait = signin.throttle.attempt([user_key, address_key])
            if wait > 0:
                retry = math.ceil(wait)
                signin.audit.record(user, address, THROTTLED, retry_after=retry)
                return self._throttled(retry)
            try:
                correct = await signin.check(user, password)
            except Exception:
                signin.throttle.failed([user_key, address_key])
                raise
            if correct:
                signin.throttle.succeeded(user_key, [address_key])
                signin.audit.record(user, address, SIGNED_IN)
                self.set_current_user(user)
                self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))
                return None
            signin.throttle.failed([user_key, address_key])
            signin.audit.record(user, address, REFUSED)
            message = tornado.escape.url_escape("Invalid username or password!")
            self.redirect(f"{self.request.uri}?error={message}")
            return None

        def _throttled(self, retry: int) -> None:
            self.set_status(429)
            self.set_header("Retry-After", str(retry))
            self.finish(
                self._login_template.render(
                    login_endpoint=self._login_endpoint,
                    errormessage=f"Too many failed sign-ins: try again in {retry} s.",
                )
            )

    return CredentialsLoginHandler
