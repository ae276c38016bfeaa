"""`workbench serve`: safe defaults, credentials, roles, and the real server refusing and admitting
over HTTP (the browser tests drive the apps themselves)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dask.config
import pytest

from workbench.errors import ServeError
from workbench.serving import (
    AccessPolicy,
    add_user,
    hash_password,
    load_credentials,
    panel_arguments,
    serve_options,
    verify_password,
)
from workbench.validation.report import previous_reports

from .conftest import DEMO_CATALOG
from .dashboards import start_server

# -- credentials and roles ----------------------------------------------------------------------


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("s3cret pass"), hash_password("s3cret pass")
    assert first != second and "s3cret" not in first
    assert verify_password("s3cret pass", first) and verify_password("s3cret pass", second)
    assert not verify_password("s3cret pas", first)
    with pytest.raises(ServeError, match="empty"):
        hash_password("")


def test_user_add_writes_a_private_file_of_hashes(tmp_path):
    path = tmp_path / "users.yaml"
    done = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import app; app()", "user", "add", "ada"]
        + ["--role", "engineer", "--credentials", str(path), "--password-stdin"],
        input="pw for ada\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "pw for ada" not in path.read_text()
    users = load_credentials(path).users
    assert users["ada"].roles == ["engineer"]
    assert verify_password("pw for ada", users["ada"].password)
    add_user(path, "bob", "pw for bob", ["business"])  # adding keeps the others
    assert set(load_credentials(path).users) == {"ada", "bob"}


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_bad_credentials_files_are_refused_with_the_fix(tmp_path):
    good = f"users:\n  ada: {{password: '{hash_password('x' * 8)}', roles: [engineer]}}\n"
    with pytest.raises(ServeError, match="chmod 600"):
        load_credentials(_write(tmp_path / "open.yaml", good, 0o644))
    with pytest.raises(ServeError, match=r"users\.ada\.password: .*workbench user add"):
        load_credentials(_write(tmp_path / "plain.yaml", "users: {ada: {password: hunter2}}"))
    with pytest.raises(ServeError, match="users.ada.role"):
        load_credentials(_write(tmp_path / "typo.yaml", good.replace("roles", "role")))
    with pytest.raises(ServeError, match="workbench user add"):
        load_credentials(tmp_path / "missing.yaml")
    with pytest.raises(ServeError, match="not valid YAML"):
        load_credentials(_write(tmp_path / "broken.yaml", "users: [unclosed"))


def test_roles_come_from_the_credentials_file_and_the_config(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "bob", "pw for bob", ["business"])
    with dask.config.set({"workbench.serve.roles": {"eve@example.org": ["engineer"]}}):
        policy = AccessPolicy.from_config(path)
    assert policy.allows("eve@example.org", "/quality")  # OAuth user, role from config
    assert policy.allows("eve@example.org", "/quality/ws")
    assert not policy.allows("bob", "/quality")
    assert policy.allows("bob", "/cubes") and policy.allows("bob", "/")
    assert not policy.allows(None, "/cubes")
    assert policy.apps_for("bob", ["cubes", "quality", "models"]) == ["cubes", "models"]
    assert policy.check_password("bob", "pw for bob")
    assert not policy.check_password("bob", "wrong") and not policy.check_password("zed", "x")


# -- options ------------------------------------------------------------------------------------


def test_defaults_are_loopback_with_exact_origins():
    options = serve_options(catalog=DEMO_CATALOG)
    assert options.address == "127.0.0.1" and options.port == 5006
    assert options.origins == ("127.0.0.1:5006", "localhost:5006")
    args = panel_arguments(options)
    assert args[args.index("--address") + 1] == "127.0.0.1"
    origins = [args[i + 1] for i, a in enumerate(args) if a == "--allow-websocket-origin"]
    assert origins == ["127.0.0.1:5006", "localhost:5006"]
    assert args[args.index("--index") + 1] == "index"
    assert [Path(a).stem for a in args if a.endswith(".py")] == [
        "index",
        "cubes",
        "quality",
        "models",
        "lineage",
    ]


def test_unsafe_combinations_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ServeError, match="without authentication"):
        serve_options(catalog=DEMO_CATALOG, address="10.1.2.3")
    published = serve_options(
        catalog=DEMO_CATALOG,
        address="10.1.2.3",
        origins=["dash.example.org"],
        allow_anonymous=True,
    )
    assert published.origins == ("dash.example.org",)
    with pytest.raises(ServeError, match="without wildcards"):
        serve_options(catalog=DEMO_CATALOG, origins=["*"])
    with pytest.raises(ServeError, match="every interface"):
        serve_options(catalog=DEMO_CATALOG, address="0.0.0.0", allow_anonymous=True)
    with pytest.raises(ServeError, match="choose from .*cubes"):
        serve_options(catalog=DEMO_CATALOG, apps=["nope"])
    with pytest.raises(ServeError, match="Panel knows .*github"):
        serve_options(catalog=DEMO_CATALOG, oauth_provider="myspace")
    monkeypatch.delenv("PANEL_OAUTH_KEY", raising=False)
    monkeypatch.delenv("PANEL_OAUTH_SECRET", raising=False)
    with pytest.raises(ServeError, match="PANEL_OAUTH_KEY, PANEL_OAUTH_SECRET"):
        serve_options(catalog=DEMO_CATALOG, oauth_provider="github")
    with pytest.raises(ServeError, match="choose one of"):
        serve_options(catalog=DEMO_CATALOG, credentials=tmp_path, oauth_provider="github")


def test_cli_exits_2_on_a_refused_option():
    done = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import app; app()", "serve"]
        + ["--address", "10.1.2.3"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "without authentication" in done.stderr


# -- the real server ----------------------------------------------------------------------------


def test_requests_without_credentials_are_refused(served):
    anonymous = served.session()
    for app in ("", "cubes", "quality", "models"):
        page = anonymous.get(f"{served.url}/{app}", allow_redirects=False, timeout=30)
        assert page.status_code == 302, app
        assert urlparse(page.headers["Location"]).path.endswith("/login"), app
    wrong = anonymous.post(
        f"{served.url}/login",
        data={"username": "ada", "password": "not her password"},
        allow_redirects=False,
        timeout=30,
    )
    assert "error" in wrong.headers["Location"] and "user" not in anonymous.cookies
    assert anonymous.get(f"{served.url}/reports/", timeout=30).status_code == 403


def test_roles_decide_who_opens_the_quality_app_and_reports(served, demo):
    _, ws, _ = demo
    batch = previous_reports(ws, "flights")[-1]["batch_id"]
    report = f"{served.url}/reports/flights/{batch}.html"
    bob, ada = served.session("bob"), served.session("ada")
    assert bob.get(f"{served.url}/cubes", timeout=60).status_code == 200
    assert bob.get(f"{served.url}/models", timeout=60).status_code == 200
    denied = bob.get(f"{served.url}/quality", timeout=60)
    assert denied.status_code == 403 and "not authorized" in denied.text
    assert bob.get(report, timeout=30).status_code == 403
    assert ada.get(f"{served.url}/quality", timeout=60).status_code == 200
    page = ada.get(report, timeout=30)
    assert page.status_code == 200 and "references:dest" in page.text
    # The reports route serves the reports folder and nothing above it.
    assert ada.get(f"{served.url}/reports/../runs.sqlite", timeout=30).status_code in (403, 404)
    assert "Traceback" not in served.output()


def test_oauth_sends_users_to_the_provider_with_secrets_from_the_environment(demo, tmp_path):
    _, ws, _ = demo
    secret = "oauth-secret-that-must-not-show"
    server = start_server(
        tmp_path,
        "cubes",
        "--oauth-provider",
        "github",
        "--workspace",
        str(ws.root),
        env={"PANEL_OAUTH_KEY": "workbench-test-client", "PANEL_OAUTH_SECRET": secret},
    )
    try:
        http = server.session()
        page = http.get(f"{server.url}/cubes", allow_redirects=False, timeout=30)
        assert page.status_code == 302
        login = http.get(f"{server.url}/login", allow_redirects=False, timeout=30)
        target = urlparse(login.headers["Location"])
        assert target.netloc == "github.com" and target.path == "/login/oauth/authorize"
        assert parse_qs(target.query)["client_id"] == ["workbench-test-client"]
        assert secret not in " ".join(server.proc.args)
        assert secret not in server.output()
    finally:
        server.stop()
    assert os.environ.get("PANEL_OAUTH_SECRET") != secret
