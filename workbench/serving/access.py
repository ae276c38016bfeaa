"""Who may open which dashboard: the credentials file, roles, and the access policy.

The credentials file holds scrypt hashes, never passwords (``workbench user add`` writes it).
Roles come from that file for basic-auth users and from ``workbench.serve.roles`` in the Dask
config for OAuth users (keyed by the login or e-mail the provider returns); which roles may open
which app is ``workbench.serve.access``. An app the policy does not list (the index page) is open
to every signed-in user.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench import config
from workbench.errors import ServeError
from workbench.privacy import Viewer

_SCHEME = "scrypt"
# 16 MiB of memory and ~50 ms per check: slow enough to make guessing costly, fast enough to log in.
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8  # the NIST SP 800-63B floor for a chosen password


def hash_password(password: str) -> str:
    """An scrypt hash with its parameters and salt, as stored in the credentials file.

    Examples
    --------
    >>> h = hash_password("correct horse")
    >>> h.startswith("scrypt$"), verify_password("correct horse", h), verify_password("x", h)
    (True, True, False)
    """
    if not password:
        raise ServeError(
            f"the password is empty; choose one of at least {MIN_PASSWORD_LENGTH} characters."
        )
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return "$".join([_SCHEME, f"{_N},{_R},{_P}", _b64(salt), _b64(key)])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (compared in constant time)."""
    scheme, params, salt, key = stored.split("$")
    n, r, p = (int(x) for x in params.split(","))
    expected = base64.b64decode(key)
    got = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=n, r=r, p=p, dklen=len(expected)
    )
    return scheme == _SCHEME and hmac.compare_digest(got, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(description="scrypt hash written by `workbench user add`")
    roles: list[str] = Field(default_factory=list)

    @field_validator("password")
    @classmethod
    def _hashed(cls, value: str) -> str:
        parts = value.split("$")
        if len(parts) != 4 or parts[0] != _SCHEME:
            raise ValueError(
                "is not an scrypt hash; never store a password itself. "
                "Set it with `workbench user add NAME --role ROLE --credentials FILE`"
            )
        return value


class CredentialsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: dict[str, UserEntry] = Field(default_factory=dict)


def load_credentials(path: Path) -> CredentialsFile:
    """Read and check a credentials file; refuse one that others can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ServeError(
            f"no credentials file at {path}; create it with "
            f"`workbench user add NAME --role ROLE --credentials {path}`."
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServeError(
            f"{path} can be read by other users (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}`."
        )
    try:
        return CredentialsFile.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise ServeError(f"{path} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ServeError(f"{path}: {where}") from exc


def add_user(path: Path, name: str, password: str, roles: list[str]) -> None:
    """Add or replace one user in the credentials file (created with mode 600)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServeError(
            f"the password of {name!r} has {len(password)} characters; choose one of at least "
            f"{MIN_PASSWORD_LENGTH} (a passphrase of a few words is easiest to remember)."
        )
    users = load_credentials(path).users if path.exists() else {}
    users[name] = UserEntry(password=hash_password(password), roles=sorted(set(roles)))
    body = CredentialsFile(users=users).model_dump()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# Written by `workbench user add`: scrypt hashes, never passwords.\n")
        yaml.safe_dump(body, f, sort_keys=True)
    os.replace(tmp, path)


@dataclass(frozen=True)
class AccessPolicy:
    """Roles per user and the roles each app requires.

    Examples
    --------
    >>> policy = AccessPolicy(access={"quality": ["engineer"]}, roles={"ada": ["engineer"]})
    >>> policy.allows("ada", "/quality"), policy.allows("bob", "/quality")
    (True, False)
    >>> policy.allows("bob", "/")  # the index is open to every signed-in user
    True
    """

    access: Mapping[str, list[str]] = field(default_factory=dict)
    roles: Mapping[str, list[str]] = field(default_factory=dict)
    credentials: CredentialsFile | None = None

    @classmethod
    def from_config(cls, credentials: Path | None = None) -> AccessPolicy:
        """``workbench.serve.access`` and ``.roles`` from the Dask config, plus the file's users."""
        return cls(
            access=dict(config.get("serve.access") or {}),
            roles=dict(config.get("serve.roles") or {}),
            credentials=load_credentials(credentials) if credentials else None,
        )

    def roles_of(self, user: str | None) -> set[str]:
        if not user:
            return set()
        found = set(self.roles.get(user, []))
        if self.credentials and user in self.credentials.users:
            found |= set(self.credentials.users[user].roles)
        return found

    def viewer(self, user: str | None) -> Viewer:
        """The user with their roles, for the data stores to mask what the roles may not see."""
        return Viewer(user, frozenset(self.roles_of(user)))

    def allows(self, user: str | None, path: str) -> bool:
        """Whether ``user`` may open the app at URL ``path`` (``/quality``, ``/quality/ws``)."""
        needed = self.access.get(app_of(path))
        return needed is None or bool(self.roles_of(user) & set(needed))

    def apps_for(self, user: str | None, apps: list[str]) -> list[str]:
        return [a for a in apps if self.allows(user, f"/{a}")]

    def check_password(self, user: str, password: str) -> bool:
        entry = self.credentials.users.get(user) if self.credentials else None
        if entry is None:
            # Spend the same time as for a known user, so timing does not reveal user names.
            verify_password(password, _dummy_hash())
            return False
        return verify_password(password, entry.password)


def app_of(path: str) -> str:
    """The app a URL path belongs to: ``/quality/ws`` -> ``quality``, ``/`` -> ``""``."""
    parts = [p for p in path.split("/") if p]
    return parts[0] if parts else ""


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))
