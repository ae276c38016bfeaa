"""What every catalog model shares: strict pydantic models, and one-or-many list fields."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def digest(entry: Any) -> str:
    """A short content hash of catalog text: an entry (a model) or JSON-like data, keys sorted.

    What the run store compares to see a spec change, and what outputs record to say which
    spec made them."""
    if hasattr(entry, "model_dump"):
        entry = entry.model_dump(mode="json", by_alias=True)
    text = json.dumps(entry, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
