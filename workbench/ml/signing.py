"""Signed artifacts: the key that signs model versions, compiled forests and checkpoints.

Anyone who can write to the workspace can replace a model file and its sha256 together, so a
checksum alone only catches accidents. Every artifact the workbench later executes or trusts
(a registered version's files, a compiled forest, a training checkpoint) is signed with
HMAC-SHA256 under a key kept *outside* the workspace, and verified before it is used.

The key, first found wins:

1. ``WORKBENCH_SIGNING_KEY``: the key itself (at least 32 characters, e.g. 64 hex digits);
2. the file named by the ``workbench.signing-key-file`` setting;
3. ``$XDG_CONFIG_HOME/workbench/signing.key`` (``~/.config/workbench/signing.key``), created
   with mode 0600 the first time something is signed (or by ``workbench keys init``).

A signature names its key by a short fingerprint (the key id), so after ``workbench keys rotate``
versions signed with an earlier key still load while that key is listed as old: in
``WORKBENCH_SIGNING_KEYS_OLD`` (comma separated) or in ``<key file>.old`` (one per line).
See docs/signing.md for the threat model and the commands.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import config
from workbench.errors import SignatureError, SigningKeyError

KEY_ENV = "WORKBENCH_SIGNING_KEY"
OLD_KEYS_ENV = "WORKBENCH_SIGNING_KEYS_OLD"
ALGORITHM = "hmac-sha256"
MIN_KEY_CHARS = 32
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    """A secret, where it came from and its id (a fingerprint); ``repr`` never shows the secret."""

    secret: bytes = field(repr=False)
    source: str
    key_id: str = ""

    def __post_init__(self) -> None:
        if not self.key_id:
            digest = hashlib.sha256(b"workbench-key-id:" + self.secret).hexdigest()[:16]
            object.__setattr__(self, "key_id", digest)

    def scoped(self, purpose: str) -> SigningKey:
        """A key for one purpose only (say, one fit's checkpoints), derived from this one, to
        hand to Dask workers without giving them the key that signs models. It keeps this
        key's id, so rotation treats both alike."""
        derived = hmac.new(self.secret, f"scope:{purpose}".encode(), hashlib.sha256).digest()
        return SigningKey(derived, f"{self.source} (scoped to {purpose})", self.key_id)


def key_file() -> Path:
    """The key file: the ``workbench.signing-key-file`` setting, else the user's config dir."""
    configured = config.get("signing-key-file")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "workbench" / "signing.key"


def old_keys_file() -> Path:
    return key_file().with_name(key_file().name + ".old")


def current_key(*, create: bool = False) -> SigningKey:
    """The signing key (see the module's docstring); ``create`` makes the key file if none."""
    if os.environ.get(KEY_ENV):
        return _from_text(os.environ[KEY_ENV], KEY_ENV)
    path = key_file()
    if not path.exists():
        if not create:
            raise SigningKeyError(
                f"no signing key: {KEY_ENV} is not set and {path} does not exist. Run "
                f"`workbench keys init`, or set {KEY_ENV} to the key your models were signed "
                "with (docs/signing.md)."
            )
        key = init_key()
        log.warning("created the signing key %s (key id %s); back it up", path, key.key_id)
        return key
    return _read_key_file(path)


def accepted_keys() -> dict[str, SigningKey]:
    """Key id -> key, for every key a signature may have been made with: current, then old."""
    keys: list[SigningKey] = []
    if os.environ.get(KEY_ENV) or key_file().exists():  # no key at all: nothing verifies
        keys.append(current_key())
    for i, text in enumerate(os.environ.get(OLD_KEYS_ENV, "").split(",")):
        if text.strip():
            keys.append(_from_text(text, f"{OLD_KEYS_ENV}[{i}]"))
    keys += _old_file_keys()
    return {k.key_id: k for k in reversed(keys)}  # the first listed wins a duplicate id


def init_key(*, force: bool = False) -> SigningKey:
    """Write a new random key to the key file (mode 0600); refuses to replace one unless
    ``force``, since every version signed with it would then be refused."""
    path = key_file()
    if path.exists() and not force:
        raise SigningKeyError(
            f"{path} already holds a signing key (key id {_read_key_file(path).key_id}); "
            "replacing it makes everything it signed unloadable. Use `workbench keys rotate` "
            "to keep it as an old key, or `workbench keys init --force` to discard it."
        )
    _write_private(path, secrets.token_hex(32) + "\n")
    return _read_key_file(path)


def rotate_key() -> tuple[SigningKey, SigningKey]:
    """Keep the key file's key as an old key and write a new one; returns (old, new)."""
    if not key_file().exists():
        raise SigningKeyError(f"no key file {key_file()} to rotate; run `workbench keys init`.")
    old = _read_key_file(key_file())
    lines = [line for line in _old_file_lines() if line.strip()]
    _write_private(old_keys_file(), "".join(f"{line}\n" for line in [*lines, old.secret.decode()]))
    return old, init_key(force=True)


def retire_key(key_id: str) -> None:
    """Remove the key ``key_id`` from the old-keys file: what it signed is refused from now on."""
    kept = [t for t in _old_file_lines() if t.strip() and _from_text(t, "").key_id != key_id]
    if len(kept) == len([t for t in _old_file_lines() if t.strip()]):
        listed = ", ".join(k.key_id for k in _old_file_keys()) or "none"
        raise SigningKeyError(f"no old key {key_id} in {old_keys_file()} (listed: {listed})")
    _write_private(old_keys_file(), "".join(f"{t}\n" for t in kept))


def canonical(manifest: dict[str, Any]) -> bytes:
    """The bytes a signature covers: sorted keys, no spaces, so equal content signs equal."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(manifest: dict[str, Any], key: SigningKey | None = None) -> dict[str, str]:
    """The signature of ``manifest`` under ``key`` (default: the current key, created if none)."""
    key = key or current_key(create=True)
    digest = hmac.new(key.secret, canonical(manifest), hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "key_id": key.key_id, "signature": digest}


def verify(
    manifest: dict[str, Any],
    signature: dict[str, Any] | None,
    *,
    where: str,
    fix: str,
    keys: dict[str, SigningKey] | None = None,
) -> str:
    """Check ``signature`` over ``manifest``; returns the key id. Raises :class:`SignatureError`
    naming ``where`` and saying ``fix`` when it is missing, from an unknown key or wrong."""
    if not signature or not signature.get("signature"):
        raise SignatureError(f"{where} is not signed. Refusing to use it; {fix}")
    if signature.get("algorithm") != ALGORITHM:
        raise SignatureError(
            f"{where} is signed with {signature.get('algorithm')!r}, not {ALGORITHM}; {fix}"
        )
    keys = accepted_keys() if keys is None else keys
    key = keys.get(str(signature.get("key_id")))
    if key is None:
        raise SignatureError(
            f"{where} was signed with key {signature.get('key_id')}, which is not an accepted "
            f"key here (accepted: {', '.join(keys) or 'none'}). If that key is yours, set "
            f"{KEY_ENV} to it or list it in {OLD_KEYS_ENV} or {old_keys_file()} "
            "(`workbench keys show` lists the key ids; docs/signing.md); otherwise " + fix
        )
    expected = hmac.new(key.secret, canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature["signature"])):
        raise SignatureError(
            f"{where}: the signature does not match the signed content under key {key.key_id}: "
            f"it was changed after signing. Refusing to use it; {fix}"
        )
    return key.key_id


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_text(text: str, source: str) -> SigningKey:
    secret = text.strip()
    if len(secret) < MIN_KEY_CHARS:
        raise SigningKeyError(
            f"the signing key from {source} has {len(secret)} characters; use at least "
            f"{MIN_KEY_CHARS}, e.g. the output of `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`, or a key file made by `workbench keys init`."
        )
    return SigningKey(secret.encode(), source)


def _read_key_file(path: Path) -> SigningKey:
    _check_private(path)
    return _from_text(path.read_text(encoding="utf-8"), str(path))


def _old_file_lines() -> list[str]:
    path = old_keys_file()
    if not path.exists():
        return []
    _check_private(path)
    return path.read_text(encoding="utf-8").splitlines()


def _old_file_keys() -> list[SigningKey]:
    path = old_keys_file()
    return [_from_text(t, f"{path}:{i + 1}") for i, t in enumerate(_old_file_lines()) if t.strip()]


def _check_private(path: Path) -> None:
    # Like ssh: a key others can read is no longer secret, and a key others can write lets
    # them sign whatever they like.
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SigningKeyError(
            f"{path} is readable or writable by others (mode {mode:o}); run `chmod 600 {path}` "
            "and, if others may have read it, rotate it (`workbench keys rotate`)."
        )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new 0600 file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
