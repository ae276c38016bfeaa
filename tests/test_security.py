"""Issue 15: each attack on `workbench serve` refused against a real server on 127.0.0.1 (real
websockets speaking Bokeh's protocol, real sign-ins), and personal data masked for users without
the ``pii`` permission in the quarantine browser, its download and ``read_dataset``."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import threading
import time

import dask.config
import pandas as pd
import pytest
import requests
from bokeh.util.token import generate_jwt_token, generate_session_id, get_token_payload

import workbench as wb
from workbench.privacy import Viewer
from workbench.serving import add_user
from workbench.serving.signin import SigninThrottle
from workbench.testing import people_catalog

from .dashboards import page_token, pull_document, start_server

USERS = {"ada": ["engineer"], "bob": ["business"], "cara": ["business", "analyst"]}
PII_KEY = "pii-key-for-the-tests-0123456789"
SERVER_ENV = {
    # cara (a business analyst) may open the quality app but not see personal data; ada may.
    "DASK_WORKBENCH__SERVE__ACCESS__QUALITY": '["engineer", "analyst"]',
    "DASK_WORKBENCH__PERMISSIONS__PII": '["engineer"]',
    "WORKBENCH_PII_KEY": PII_KEY,
}
QUARANTINED = [f"person{i}@example.org" for i in (0, 3, 6, 9)]  # unknown segment


def _hash(value: str) -> str:
    return hmac.new(PII_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


def _users(folder) -> tuple:
    path = folder / "users.yaml"
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    for user, roles in USERS.items():
        add_user(path, user, passwords[user], roles)
    return path, passwords


@pytest.fixture(scope="module")
def people(client, tmp_path_factory):
    """The people catalog run through the pipeline: emails tagged pii, four rows quarantined."""
    path = people_catalog(tmp_path_factory.mktemp("people"))
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, cluster=client.scheduler.address)
    return path, ws


@pytest.fixture(scope="module")
def guarded(people, tmp_path_factory):
    """`workbench serve index quality` over the people workspace with basic auth."""
    path, ws = people
    folder = tmp_path_factory.mktemp("guarded")
    users, passwords = _users(folder)
    server = start_server(
        folder,
        "index",
        "quality",
        "--credentials",
        str(users),
        "--catalog",
        str(path),
        "--workspace",
        str(ws.root),
        env=SERVER_ENV,
    )
    server.passwords = passwords
    yield server
    server.stop()


def _cookies(http: requests.Session) -> dict:
    return http.cookies.get_dict()


def _document_text(server, app: str, http: requests.Session, token: str, want: str) -> str:
    """The app's document as text, pulled until ``want`` shows (the quarantine table is filled
    on the server's next tick after the session starts) or ten tries have passed."""
    text = ""
    for _ in range(10):
        doc = pull_document(server.url, app, _cookies(http), token)
        assert isinstance(doc, dict), f"the document was refused ({doc})"
        text = json.dumps(doc)
        if want in text:
            break
        time.sleep(0.5)
    return text


# -- sessions: signed, owned, and opened only with the app's role --------------------------------


def test_a_genuine_token_gets_the_document(guarded):
    ada = guarded.session("ada")
    token = page_token(ada, f"{guarded.url}/quality")
    assert "Quarantine" in _document_text(guarded, "quality", ada, token, "Quarantine")


def test_forged_session_tokens_get_no_document(guarded):
    bob = guarded.session("bob")
    genuine = get_token_payload(page_token(bob, f"{guarded.url}/index"))
    unsigned = generate_jwt_token(
        generate_session_id(signed=False), signed=False, extra_payload=genuine
    )
    wrong_key = generate_jwt_token(
        generate_session_id(secret_key=b"x" * 32, signed=True),
        secret_key=b"x" * 32,
        signed=True,
        extra_payload=genuine,
    )
    for app in ("index", "quality"):
        for token in (unsigned, wrong_key, "not-a-token"):
            assert pull_document(guarded.url, app, _cookies(bob), token) == 403, (app, token)
    assert "Traceback" not in guarded.output()


def test_another_users_token_gets_no_document(guarded):
    ada, bob, cara = (guarded.session(u) for u in ("ada", "bob", "cara"))
    adas_quality = page_token(ada, f"{guarded.url}/quality")
    adas_index = page_token(ada, f"{guarded.url}/index")
    # bob and cara replay tokens copied from ada's pages with their own sign-in cookies.
    assert pull_document(guarded.url, "quality", _cookies(bob), adas_quality) == 403
    assert pull_document(guarded.url, "index", _cookies(bob), adas_index) == 403
    assert pull_document(guarded.url, "quality", _cookies(cara), adas_quality) == 403
    # A token without a sign-in behind it: refused before the handshake.
    assert pull_document(guarded.url, "index", {}, adas_index) == 403
    assert isinstance(pull_document(guarded.url, "index", _cookies(ada), adas_index), dict)


def test_a_user_without_the_role_gets_no_document_on_any_route(guarded):
    bob = guarded.session("bob")
    assert bob.get(f"{guarded.url}/quality", timeout=60).status_code == 403
    # bob's own, genuinely signed token from a page he may open, presented to the quality app.
    own = page_token(bob, f"{guarded.url}/index")
    assert pull_document(guarded.url, "quality", _cookies(bob), own) == 403
    autoload = bob.get(
        f"{guarded.url}/quality/autoload.js",
        params={"bokeh-autoload-element": "x", "bokeh-app-path": "/quality"},
        timeout=60,
    )
    assert autoload.status_code == 403 and "quarantine" not in autoload.text.lower()
    assert bob.get(f"{guarded.url}/quality/metadata", timeout=30).status_code == 403
    assert bob.get(f"{guarded.url}/reports/", timeout=30).status_code == 403
    assert isinstance(pull_document(guarded.url, "index", _cookies(bob), own), dict)


# -- personal data ---------------------------------------------------------------------------------


def test_the_quarantine_browser_masks_emails_without_the_pii_permission(guarded):
    cara, ada = guarded.session("cara"), guarded.session("ada")
    masked = _document_text(
        guarded,
        "quality",
        cara,
        page_token(cara, f"{guarded.url}/quality?tab=quarantine"),
        _hash(QUARANTINED[0]),
    )
    assert all(_hash(e) in masked for e in QUARANTINED)
    assert "@example.org" not in masked
    plain = _document_text(
        guarded,
        "quality",
        ada,
        page_token(ada, f"{guarded.url}/quality?tab=quarantine"),
        QUARANTINED[0],
    )
    assert all(e in plain for e in QUARANTINED) and _hash(QUARANTINED[0]) not in plain


def test_validation_reports_never_hold_pii_in_plain_text(people):
    """The reports under /reports/ go to everyone who may open the quality app, with or
    without the pii permission: their sample rows are written masked."""
    _, ws = people
    folder = ws.path("reports", "validation", "people")
    files = sorted(folder.glob("*.json")) + sorted(folder.glob("*.html"))
    assert files
    samples = [row for p in folder.glob("*.json") for row in json.loads(p.read_text())["samples"]]
    assert len(samples) >= len(QUARANTINED)  # the quarantined rows are sampled ...
    for path in files:  # ... with their emails masked, in the JSON and the page
        assert "@example.org" not in path.read_text(), path


def test_the_quarantine_download_masks_emails_without_the_pii_permission(people, monkeypatch):
    from workbench.views import QualityDashboard, QualityStore

    path, ws = people
    monkeypatch.setenv("WORKBENCH_PII_KEY", PII_KEY)
    monkeypatch.setattr("workbench.privacy.pii_key", lambda: PII_KEY.encode())

    def download(viewer: Viewer) -> pd.DataFrame:
        store = QualityStore(catalog_path=str(path), workspace=str(ws.root), viewer=viewer)
        return pd.read_csv(QualityDashboard(store).quarantine_csv())

    with dask.config.set({"workbench.permissions.pii": ["engineer"]}):
        business = download(Viewer("cara", frozenset({"business", "analyst"})))
        engineer = download(Viewer("ada", frozenset({"engineer"})))
        anonymous = download(None)
    assert sorted(engineer.email) == sorted(QUARANTINED)
    assert sorted(business.email) == sorted(_hash(e) for e in QUARANTINED)
    assert sorted(anonymous.email) == sorted(business.email)
    for frame in (business, anonymous):
        assert not frame.astype(str).apply(lambda c: c.str.contains("@example.org")).any().any()


def test_read_dataset_masks_for_a_user_without_the_permission(people, tmp_path, client):
    path, ws = people
    catalog = wb.load_catalog(path)
    roles = {"ada": ["engineer"], "bob": ["business"]}
    with dask.config.set(
        {"workbench.serve.roles": roles, "workbench.permissions.pii": ["engineer"]}
    ):
        for_bob = wb.read_dataset(catalog, ws, "people", user="bob").compute()
        for_ada = wb.read_dataset(catalog, ws, "people", user="ada").compute()
    unmasked = wb.read_dataset(catalog, ws, "people").compute()  # the library user: the files
    assert for_ada.email.str.endswith("@example.org").all() and len(for_ada) == 8
    assert not for_bob.email.str.contains("@").any()
    assert for_bob.email.nunique() == unmasked.email.nunique()  # a keyed hash keeps distinct
    assert (for_bob.person_id.to_numpy() == unmasked.person_id.to_numpy()).all()

    redacting = people_catalog(tmp_path, mask="redact")
    redacted = wb.load_catalog(redacting)
    assert redacted.pii.mask == "redact" and redacted.datasets["people"].column_tags == {
        "email": ["pii"]
    }
    rws = wb.Workspace.for_catalog(redacted)
    wb.run_pipeline(redacted, rws, cluster=client.scheduler.address)
    rows = wb.read_dataset(redacted, rws, "people", user=Viewer("bob")).compute()
    assert (rows.email == "[redacted]").all()


def test_the_plain_schema_form_stays_valid_and_tags_are_checked(tmp_path):
    text = people_catalog(tmp_path).read_text()
    plain = wb.parse_catalog(text.replace("{type: string, tags: [pii]}", "string"))
    assert plain.datasets["people"].schema_["email"] == "string"
    assert plain.datasets["people"].column_tags == {}
    with pytest.raises(wb.CatalogError, match="email"):
        wb.parse_catalog(text.replace("{type: string, tags: [pii]}", "{typ: string}"))


# -- sign-in -------------------------------------------------------------------------------------


@pytest.fixture
def signin_server(tmp_path):
    """A server of the index alone, so the lock-outs of a test reach no other test."""
    users, passwords = _users(tmp_path)
    server = start_server(
        tmp_path, "index", "--credentials", str(users), "--workspace", str(tmp_path / "ws")
    )
    server.passwords = passwords
    yield server
    server.stop()


def _sign_in(server, user: str, password: str) -> requests.Response:
    return requests.post(
        f"{server.url}/login",
        data={"username": user, "password": password},
        allow_redirects=False,
        timeout=30,
    )


def test_repeated_wrong_passwords_lock_the_account_and_address_out(signin_server, tmp_path):
    statuses = [_sign_in(signin_server, "ada", f"guess {i}").status_code for i in range(30)]
    assert statuses[:5] == [302] * 5  # the first failures: back to the sign-in page
    assert statuses.count(429) >= 20  # then refused without a password check
    right = _sign_in(signin_server, "ada", signin_server.passwords["ada"])
    assert right.status_code == 429 and "user" not in right.cookies
    wait = int(right.headers["Retry-After"])
    assert 1 <= wait <= 900
    time.sleep(wait + 0.2)
    later = _sign_in(signin_server, "ada", signin_server.passwords["ada"])
    assert later.status_code == 302 and "user" in later.cookies

    lines = (tmp_path / "ws" / "reports" / "audit" / "signin.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 32
    results = [r["result"] for r in records]
    assert results[-1] == "signed-in" and results.count("throttled") >= 21
    assert {r["user"] for r in records} == {"ada"}
    assert {r["address"] for r in records} == {"127.0.0.1"}
    assert all(r["time"].endswith("+00:00") for r in records)
    text = "\n".join(lines)
    assert "guess" not in text and signin_server.passwords["ada"] not in text


def test_sign_ins_do_not_stall_the_server(signin_server):
    """Five sign-ins at once (~50 ms of scrypt each) while a page is requested: the page must
    not wait for the hashing, which runs in a thread pool beside the event loop."""
    done: list[float] = []

    def sign_in() -> None:
        _sign_in(signin_server, "bob", signin_server.passwords["bob"])
        done.append(time.monotonic())

    requests.get(f"{signin_server.url}/liveness-probe", timeout=30)  # a warm connection pool
    start = time.monotonic()
    threads = [threading.Thread(target=sign_in) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.03)
    probe_start = time.monotonic()
    requests.get(f"{signin_server.url}/liveness-probe", timeout=30)
    probe = time.monotonic() - probe_start
    for t in threads:
        t.join()
    signins = max(done) - start
    assert len(done) == 5
    assert probe < 0.5 * signins, (probe, signins)


def test_the_throttle_counts_per_user_and_per_address():
    now = [0.0]
    throttle = SigninThrottle(free=3, backoff=1.0, cap=8.0, forget=60.0, clock=lambda: now[0])
    for i in range(4):  # one user guessed from four addresses
        keys = [("user", "ada"), ("address", f"10.0.0.{i}")]
        assert throttle.attempt(keys) == 0.0
        throttle.failed(keys)
    assert throttle.attempt([("user", "ada"), ("address", "10.0.0.9")]) == 1.0
    for i in range(4):  # one address guessing four users
        keys = [("user", f"u{i}"), ("address", "10.9.9.9")]
        assert throttle.attempt(keys) == 0.0
        throttle.failed(keys)
    assert throttle.attempt([("user", "zed"), ("address", "10.9.9.9")]) == 1.0
    now[0] = 1.5  # the lock-out has passed: one more failure doubles it
    keys = [("user", "ada"), ("address", "10.0.0.9")]
    assert throttle.attempt(keys) == 0.0
    throttle.failed(keys)
    assert throttle.attempt(keys) == 2.0
    now[0] = 100.0  # forgotten after a quiet minute
    assert throttle.attempt([("user", "ada"), ("address", "10.0.0.1")]) == 0.0


def test_user_add_refuses_a_short_password(tmp_path):
    path = tmp_path / "users.yaml"
    done = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import app; app()", "user", "add", "ada"]
        + ["--role", "engineer", "--credentials", str(path), "--password-stdin"],
        input="short\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "at least 8" in done.stderr
    assert not path.exists()
