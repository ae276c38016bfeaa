"""Personal data: which columns hold it, who may see it, and how it is masked for everyone else.

A catalog tags columns in a dataset's schema (``email: {type: string, tags: [pii]}``) and says
how they are masked (``pii: {mask: hash}`` on the catalog or a dataset). A :class:`Viewer` sees
them as stored when one of their roles holds the ``pii`` permission
(``workbench.permissions.pii`` in the Dask config); every other viewer gets masked values. The
dashboards, their downloads and ``read_dataset(..., user=...)`` go through :func:`masking_for`, and
so will any later HTTP API.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from workbench import config
from workbench.catalog.load import columns_of
from workbench.catalog.models import Catalog

log = logging.getLogger(__name__)

PII = "pii"  # the column tag and the permission that lifts the mask
KEY_ENV = "WORKBENCH_PII_KEY"
REDACTED = "[redacted]"
_HASH_CHARS = 16  # 64 bits: distinct values stay distinct in any table a dashboard shows


@dataclass(frozen=True)
class Viewer:
    """Who reads the data: a user name and the roles the server or the config gives them.

    Examples
    --------
    >>> Viewer("bob", frozenset({"business"})).may("pii")
    False
    """

    name: str | None
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, name: str) -> Viewer:
        """A user whose roles come from ``workbench.serve.roles`` (OAuth logins, scripts)."""
        return cls(name, frozenset((config.get("serve.roles") or {}).get(name, [])))

    def may(self, permission: str) -> bool:
        """Whether one of the roles holds ``permission`` (``workbench.permissions.<name>``)."""
        granted = (config.get("permissions") or {}).get(permission) or []
        return bool(self.roles & set(granted))


def pii_columns(catalog: Catalog, name: str) -> list[str]:
    """Columns of dataset ``name`` tagged ``pii``, followed through curated ``from`` and joins."""
    ds = catalog.dataset(name)
    if ds.zone == "lake":
        return [c for c, tags in ds.column_tags.items() if PII in tags]
    found = pii_columns(catalog, ds.from_)
    for join in ds.joins:
        brought = join.column_map(columns_of(catalog, join.dataset))
        found += [brought[c] for c in pii_columns(catalog, join.dataset) if c in brought]
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Masking:
    """Replace the values of ``columns`` by a keyed hash or a redaction mark (nulls stay null)."""

    columns: tuple[str, ...]
    how: str
    key: bytes = field(repr=False, default=b"")

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        present = [c for c in self.columns if c in frame.columns]
        if not present:
            return frame
        out = frame.copy()
        for column in present:
            out[column] = self._mask(out[column])
        return out

    def _mask(self, values: pd.Series) -> pd.Series:
        missing = values.isna().to_numpy()
        if self.how == "redact":
            masked = [REDACTED] * len(values)
        else:
            masked = [_keyed_hash(self.key, str(v)) for v in values.to_numpy()]
        return pd.Series(masked, index=values.index, dtype="string").mask(missing)


def masking_for(
    catalog: Catalog, name: str, viewer: Viewer, also: Iterable[str] = ()
) -> Masking | None:
    """The masking ``viewer`` gets on dataset ``name``; None when nothing is hidden from them.

    ``also`` names columns that may carry the tagged values in another form (the raw text of a
    quarantined line): they are masked with the tagged ones.
    """
    tagged = pii_columns(catalog, name)
    if not tagged or viewer.may(PII):
        return None
    how = (catalog.datasets[name].pii or catalog.pii).mask
    return Masking((*tagged, *also), how, pii_key() if how == "hash" else b"")


def mask_frame(frame: pd.DataFrame, masking: Masking | None) -> pd.DataFrame:
    return frame if masking is None else masking.apply(frame)


def _keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:_HASH_CHARS]


@functools.cache
def pii_key() -> bytes:
    """``WORKBENCH_PII_KEY``, or a random key for this process.

    A random key still hides the values (nobody can hash guesses to compare), but masked values
    change when the process restarts; set the variable to keep them stable.
    """
    given = os.environ.get(KEY_ENV)
    if given:
        return given.encode("utf-8")
    log.warning("%s is not set: pii columns are hashed with a key made for this process", KEY_ENV)
    return secrets.token_bytes(32)
