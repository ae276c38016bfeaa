"""Lazy re-exports: a package names its public API without importing it.

``import workbench`` (and so every ``workbench`` command) would otherwise import Dask's
dataframe and array modules, xarray, LightGBM and Bokeh before doing anything: about 4 s. The
CLI's ``--help`` and ``catalog list`` need none of them, so a package's public names are
resolved on first use instead (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose ``exports`` map each
    submodule (relative, e.g. ``".delta"``) to the public names it defines; under ``"."``, names
    of submodules exported as they are. ``__all__`` is those names, so they are listed once.

    Examples
    --------
    >>> exports = {".delta": ("read_table",)}
    >>> __getattr__, __dir__, __all__ = lazy_exports(__name__, exports)  # doctest: +SKIP
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if where[name] == ".":
            value = importlib.import_module(f".{name}", package)
        else:
            value = getattr(importlib.import_module(where[name], package), name)
        globals_of(package)[name] = value  # cache: later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals_of(package), *where})

    return __getattr__, __dir__, sorted(where)


def globals_of(package: str) -> dict[str, Any]:
    return vars(importlib.import_module(package))


class LazyModule:
    """A module imported on first attribute access: for modules the catalog's validators load
    (expressions) but only evaluation uses (pandas, numpy)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        self.__dict__.update(vars(module))  # later lookups are plain attribute reads
        return getattr(module, attr)
