"""TLS between the scheduler, its workers and the client of an HPC cluster.

Dask's protocol carries pickles: whoever reaches a scheduler or worker port can run code as the
person who started it. On loopback only this machine's users can (and the single-node default
keeps everything there); a scheduler that listens on a cluster interface is reachable by every
node, so it speaks TLS unless the profile says which certificates to use: temporary self-signed
credentials (``Security.temporary()``) made at start, or the site's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.config

from workbench.errors import ProfileError

ROLES = ("scheduler", "worker", "client")


def on_loopback(options: dict[str, Any], settings: dict, jobqueue: dict) -> bool:
    """Whether a scheduler with these ``scheduler_options`` is reachable from this machine only."""
    if options.get("host"):
        return is_loopback(str(options["host"]))
    # dask-jobqueue puts the scheduler on the workers' interface when none of its own is set
    interface = options.get("interface") or settings.get("interface") or jobqueue.get("interface")
    return interface in ("lo", "lo0")


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("localhost", "::1")


def profile_security(name: str, value: Any, loopback: bool):
    """The ``security`` dask-jobqueue gets: ``None`` (plain TCP), ``True`` (temporary
    credentials, made by dask-jobqueue) or a ``Security`` of the site's files.

    ``security: null`` means TLS off loopback and, on loopback, only when the Dask config
    requires encryption (its ``distributed.comm.tls.*`` files apply); ``temporary`` makes
    self-signed credentials; a mapping names the files: ``ca-file``, ``cert`` and ``key`` (or
    per role, ``worker-cert``).
    """
    from distributed.security import Security

    if value is False and not loopback:
        raise ProfileError(
            f"workbench.cluster.profiles.{name}.security is false, but the scheduler listens "
            "beyond loopback, where anyone who reaches its port can run code as you (Dask's "
            "protocol carries pickles). Remove `security: false` (temporary TLS credentials "
            "are made for you) or give certificate files (security: {ca-file, cert, key})."
        )
    if value is None or value is False:
        if not loopback:
            return True
        if dask.config.get("distributed.comm.require-encryption", default=False):
            return Security()
        return None
    if value in (True, "temporary"):
        return True
    if not isinstance(value, dict) or "ca-file" not in value:
        raise ProfileError(
            f"workbench.cluster.profiles.{name}.security must be null, 'temporary' or a "
            "mapping with ca-file, cert and key (files readable on every node)."
        )
    files: dict[str, Any] = {"tls_ca_file": value["ca-file"], "require_encryption": True}
    for role in ROLES:
        files[f"tls_{role}_cert"] = value.get(f"{role}-cert") or value.get("cert")
        files[f"tls_{role}_key"] = value.get(f"{role}-key") or value.get("key")
    return Security(**files)


def job_credentials(folder: Path, security: Any) -> dict[str, dict[str, str]] | None:
    """The certificate files of each role for a job's srun layout, as plain paths.

    Temporary credentials (``security`` True) go under ``folder/tls``, written by
    :func:`write_temporary_credentials` once the folder exists; a site's files are named as
    given. ``None`` when the security has no files of its own (the Dask config's then apply).
    """
    if security is True:
        tls = folder / "tls"
        files = {"ca_file": str(tls / "ca.pem"), "cert": str(tls / "cert.pem")}
        return {r: {**files, "key": str(tls / "key.pem")} for r in ROLES}
    if security.tls_ca_file is None:
        return None
    return {r: _role_files(security, r) for r in ROLES}


def write_temporary_credentials(files: dict[str, dict[str, str]]) -> None:
    """Make self-signed credentials and write them where :func:`job_credentials` said, in a
    0700 folder of 0600 files: the job's tasks read them, nobody else can."""
    from distributed.security import Security

    temporary = Security.temporary()  # one pair for every role
    paths = files["scheduler"]
    Path(paths["key"]).parent.mkdir(mode=0o700)
    _private_file(paths["ca_file"], temporary.tls_ca_file)
    _private_file(paths["cert"], temporary.tls_scheduler_cert)
    _private_file(paths["key"], temporary.tls_scheduler_key)


def job_security(files: dict[str, dict[str, str]]):
    """The ``Security`` a task of the srun layout uses, from :func:`job_credentials`."""
    from distributed.security import Security

    kwargs: dict[str, Any] = {"tls_ca_file": files["client"]["ca_file"]}
    for role in ROLES:
        kwargs[f"tls_{role}_cert"] = files[role]["cert"]
        kwargs[f"tls_{role}_key"] = files[role]["key"]
    return Security(require_encryption=True, **kwargs)


def _role_files(security: Any, role: str) -> dict[str, str]:
    return {
        "ca_file": security.tls_ca_file,
        "cert": getattr(security, f"tls_{role}_cert"),
        "key": getattr(security, f"tls_{role}_key"),
    }


def _private_file(path: str, text: str) -> None:
    # Created with 0600 from the start: a key must never be readable, even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
