"""Configuration the Dask way: packaged defaults merged into ``dask.config`` under ``workbench``.

Precedence: an explicit argument, then Dask config (YAML files, ``DASK_WORKBENCH__*`` variables),
then the packaged default in ``workbench.yaml``.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

_DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "workbench.yaml")

with open(_DEFAULTS_FILE, encoding="utf-8") as _f:
    _DEFAULTS = yaml.safe_load(_f)

dask.config.update_defaults(_DEFAULTS)


def get(key: str, value: Any = None) -> Any:
    """Return ``value`` when given, else the ``workbench.<key>`` setting.

    Examples
    --------
    >>> get("cluster.profile")
    'local'
    >>> get("cluster.profile", "tcp://127.0.0.1:8786")
    'tcp://127.0.0.1:8786'
    """
    if value is not None:
        return value
    return dask.config.get(f"workbench.{key}")
