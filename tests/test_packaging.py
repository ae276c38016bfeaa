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


def test_views_read_through_public_names_only():
    """DESIGN §1: views never import a name their source package does not list in __all__
    (private names, storage helpers) and never build workspace paths."""
    import ast
    import importlib

    found = []
    for path in sorted((REPO / "workbench" / "views").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench."):
                package = ".".join(node.module.split(".")[:2])
                if package == "workbench.views":
                    continue
                module = importlib.import_module(package)
                public = getattr(module, "__all__", None)
                public = public or [n for n in vars(module) if not n.startswith("_")]
                found += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                          if a.name not in public]  # fmt: skip
            # A workspace path is storage, not an API.
            elif isinstance(node, ast.Attribute) and node.attr in ("path", "_delta_log"):
                found += [f"{path.name}:{node.lineno}"] if "ws" in ast.unparse(node.value) else []
    assert not found, "\n".join(found)
