"""Packaging promises: environment.yml agrees with pyproject.toml, and the code passes ruff."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from .conftest import REPO

_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(.*)$")


def _parse(spec: str) -> tuple[str, str]:
    name, constraint = _NAME.match(spec).groups()
    constraint = constraint.strip().split("#")[0].strip()
    # conda writes an exact pin with one '=', pip with '=='.
    constraint = re.sub(r"^=(?!=)", "==", constraint)
    return name.lower().replace("_", "-"), constraint.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = dict(_parse(d) for d in project["dependencies"])
    for extra in ("lab", "hpc", "browser", "docs"):
        wanted.update(_parse(d) for d in project["optional-dependencies"][extra])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have.update(_parse(d) for d in dep["pip"] if not d.startswith("-e"))
        elif not dep.startswith(("python=", "pip")):
            have.update([_parse(dep)])
    assert have == wanted


def test_ruff_is_clean():
    # --no-cache: a test never writes into the checkout.
    paths = ["workbench", "apps", "tests", "benchmarks"]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
