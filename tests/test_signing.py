"""Signed artifacts: each attack of issue 15 item 3 is refused with a clear error, nothing changed.

The session's key comes from ``WORKBENCH_SIGNING_KEY`` (tests/conftest.py); tests that need
other keys set them with ``monkeypatch``, and key files live under ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.errors import SignatureError, SigningKeyError
from workbench.ml import native, signing
from workbench.ml.checkpoints import Checkpoint
from workbench.ml.estimators import Predictor, get_estimator
from workbench.ml.registry import (
    load_predictor,
    model_metadata,
    register_model,
    resign_version,
)
from workbench.ml.score import with_engine
from workbench.ml.train import fit_data

from .conftest import DEMO_CATALOG
from .ml_helpers import copy_workspace

NAME = "departure_delay"
runner = CliRunner()


@pytest.fixture
def ws(demo, tmp_path):
    """A writable copy of the demo workspace; its models were signed with the session key."""
    _, demo_ws, _ = demo
    return copy_workspace(demo_ws, tmp_path / "ws")


def _version(ws) -> tuple[int, Path]:
    version = model_metadata(ws, NAME)["version"]
    return version, ws.path("models", NAME, str(version))


def _tiny_booster(n_features: int = 3) -> lightgbm.Booster:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, n_features))
    return lightgbm.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 4},
        lightgbm.Dataset(X, label=(X[:, 0] > 0).astype(float)),
        num_boost_round=3,
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _cli(ws, *args):
    base = ["--catalog", str(DEMO_CATALOG), "--workspace", str(ws.root)]
    return runner.invoke(app, [*args, *base])


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.chmod(0o644)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def test_swapped_model_file_with_its_sha256_updated_is_refused(ws):
    version, folder = _version(ws)
    model_file = folder / "model.txt"
    swapped = _tiny_booster().model_to_string()  # the attacker's model
    assert lightgbm.Booster(model_str=swapped).num_trees() > 0  # it would load and score
    model_file.write_text(swapped)
    new_sha = hashlib.sha256(swapped.encode()).hexdigest()
    _edit_json(folder / "metadata.json", lambda m: m.update(sha256=new_sha))
    before = _snapshot(folder)

    with pytest.raises(SignatureError, match=r"metadata\.json does not match the sha256.*retrain"):
        load_predictor(ws, NAME, version)
    verified = _cli(ws, "model", "verify", NAME, "--json")
    assert verified.exit_code == 3
    assert json.loads(verified.output)[-1]["ok"] is False
    assert _snapshot(folder) == before  # refusing changed nothing


def test_edited_metrics_are_refused_wherever_metadata_is_read(ws):
    version, folder = _version(ws)
    _edit_json(folder / "metadata.json", lambda m: m["metrics"].update(roc_auc=0.99))
    with pytest.raises(SignatureError, match="changed after registration"):
        model_metadata(ws, NAME, version)  # what promotion and the dashboards read
    with pytest.raises(SignatureError):
        load_predictor(ws, NAME, version)
    shown = _cli(ws, "model", "show", NAME, "--version", str(version))
    assert shown.exit_code == 3 and "0.99" not in shown.output


def test_unsigned_version_is_refused_until_signed_on_purpose(ws):
    version, folder = _version(ws)
    (folder / "signature.json").unlink()
    with pytest.raises(SignatureError, match=r"is not signed.*resign .*--trust-unsigned"):
        load_predictor(ws, NAME, version)
    assert _cli(ws, "model", "resign", NAME).exit_code == 3  # not without saying so
    assert not (folder / "signature.json").exists()

    done = _cli(ws, "model", "resign", NAME, "--version", str(version), "--trust-unsigned")
    assert done.exit_code == 0, done.output
    assert load_predictor(ws, NAME, version).fit_info["version"] == version


def test_a_version_signed_with_another_key_is_refused_naming_both_keys(ws, monkeypatch):
    version, _ = _version(ws)
    signed_with = signing.current_key().key_id
    monkeypatch.setenv(signing.KEY_ENV, secrets.token_hex(32))
    other = signing.current_key().key_id
    with pytest.raises(SignatureError, match=rf"signed with key {signed_with}.*accepted: {other}"):
        load_predictor(ws, NAME, version)


def test_a_signed_version_copied_over_another_is_refused(ws):
    version, folder = _version(ws)
    predictor = load_predictor(ws, NAME, version)
    weak = register_model(ws, NAME, predictor, {"estimator": "lightgbm_classifier"})
    # Roll-forward attack: the older version's signed files put in the newer one's place.
    for f in weak.path.iterdir():
        f.chmod(0o644)
        f.unlink()
    for f in folder.iterdir():
        if f.is_file():
            shutil.copy(f, weak.path / f.name)
    with pytest.raises(SignatureError, match=rf"signs model '{NAME}' version {version}, not"):
        load_predictor(ws, NAME, weak.version)


def test_rotation_old_key_accepted_until_retired(ws, monkeypatch):
    version, _ = _version(ws)
    key_a = os.environ[signing.KEY_ENV]
    predictor = load_predictor(ws, NAME, version)
    second = register_model(ws, NAME, predictor, {"estimator": "lightgbm_classifier"}).version

    monkeypatch.setenv(signing.KEY_ENV, secrets.token_hex(32))  # rotate to key B ...
    monkeypatch.setenv(signing.OLD_KEYS_ENV, key_a)  # ... with A listed as old
    assert load_predictor(ws, NAME, version).fit_info["version"] == version
    key_b = resign_version(ws, NAME, second)
    signature = ws.path("models", NAME, str(second), "signature.json")
    assert json.loads(signature.read_text())["key_id"] == key_b

    monkeypatch.delenv(signing.OLD_KEYS_ENV)  # A retired
    assert load_predictor(ws, NAME, second).fit_info["version"] == second  # signed again with B
    with pytest.raises(SignatureError, match="not an accepted key"):
        load_predictor(ws, NAME, version)  # still A's signature only


def test_keys_commands_on_a_fresh_machine(tmp_path, monkeypatch):
    """No key configured: the first registration makes a 0600 key file; `keys init` refuses
    to replace it; rotation keeps the old key until it is retired; the key is never shown."""
    monkeypatch.delenv(signing.KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key_path = tmp_path / "config" / "workbench" / "signing.key"
    shown = runner.invoke(app, ["keys", "show"])
    assert shown.exit_code == 2 and "workbench keys init" in shown.output

    ws = wb.Workspace(tmp_path / "ws")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.arange(20.0).reshape(-1, 1), np.arange(20) % 2)
    register_model(ws, "tiny", Predictor("sklearn", model, "classification", ["x"], {}), {})
    assert key_path.stat().st_mode & 0o777 == 0o600
    secret = key_path.read_text().strip()
    first = signing.current_key().key_id

    again = runner.invoke(app, ["keys", "init"])
    assert again.exit_code == 2 and "keys rotate" in again.output
    assert key_path.read_text().strip() == secret
    shown = runner.invoke(app, ["keys", "show", "--json"])
    assert json.loads(shown.output)["key_id"] == first and secret not in shown.output

    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 0
    old_file = key_path.with_name("signing.key.old")
    assert old_file.stat().st_mode & 0o777 == 0o600
    assert signing.current_key().key_id != first
    assert load_predictor(ws, "tiny").task == "classification"  # old key still accepted
    assert runner.invoke(app, ["keys", "retire", first]).exit_code == 0
    with pytest.raises(SignatureError, match=f"signed with key {first}"):
        load_predictor(ws, "tiny")

    key_path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        signing.current_key()


def _tiny_forest(n_features: int = 3) -> native.NativeForest:
    return native.compile_forest(_tiny_booster(n_features).model_to_string(), n_features)


@pytest.mark.skipif(not native.available(), reason="needs lleaves and llvmlite")
def test_hand_made_object_file_in_the_native_cache_is_never_loaded(tmp_path, monkeypatch):
    forest = _tiny_forest()
    folder_a = tmp_path / "models" / "a" / "1"
    native.save(folder_a, forest, 0.0)
    assert native.load(folder_a).sha256 == forest.sha256  # a signed forest loads

    # Someone with write access to the workspace, but not the key: code + side file by hand.
    folder_b = tmp_path / "models" / "b" / "1"
    path = native.object_path(folder_b)
    path.parent.mkdir(parents=True)
    evil = bytearray(forest.code)
    evil[len(evil) // 2] ^= 0xFF
    path.write_bytes(bytes(evil))
    side = json.loads(native.object_path(folder_a).with_suffix(".json").read_text())
    side["sha256"] = hashlib.sha256(evil).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(SignatureError, match=r"changed after signing.*model compile b"):
        native.load(folder_b)
    del side["signature"]
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(SignatureError, match="is not signed"):
        native.load(folder_b)
    # A signed forest of model a copied beside model b is refused too.
    shutil.copy(native.object_path(folder_a), path)
    shutil.copy(native.object_path(folder_a).with_suffix(".json"), path.with_suffix(".json"))
    with pytest.raises(SignatureError, match="changed after signing"):
        native.load(folder_b)
    # ... and one signed with another key.
    monkeypatch.setenv(signing.KEY_ENV, secrets.token_hex(32))
    with pytest.raises(SignatureError, match="not an accepted key"):
        native.load(folder_a)
    assert hashlib.sha256(evil).hexdigest() not in native._LOADED  # llvmlite never saw it


@pytest.mark.skipif(not native.available(), reason="needs lleaves and llvmlite")
def test_scoring_refuses_a_forged_forest_beside_a_registered_model(ws):
    version, folder = _version(ws)
    predictor = load_predictor(ws, NAME, version)
    forest = _tiny_forest(len(predictor.features))
    path = native.object_path(folder)
    path.parent.mkdir()
    path.write_bytes(forest.code)
    side = {"sha256": forest.sha256, "n_features": forest.n_features, "objective": "binary"}
    path.with_suffix(".json").write_text(json.dumps(side))
    catalog = wb.load_catalog(DEMO_CATALOG)
    with pytest.raises(SignatureError, match=r"native/.*\.o is not signed.*delete .*native"):
        with_engine(catalog, ws, predictor)  # engine "auto": an error, not a silent fallback
    assert predictor.native is None


def test_checkpoint_is_resumed_only_with_its_signature(tmp_path, caplog):
    key = signing.current_key()
    checkpoint = Checkpoint(tmp_path / "fit-a", 5, key)
    checkpoint.save(5, b"booster text", "txt")
    assert checkpoint.latest() == (5, b"booster text")

    step = tmp_path / "fit-a" / "step-000005.txt"
    step.write_bytes(b"tampered booster")
    with caplog.at_level(logging.WARNING, logger="workbench.ml.checkpoints"):
        assert checkpoint.latest() is None
    assert "not resuming" in caplog.text and "step-000005.txt" in caplog.text

    # A signed checkpoint of another fit, copied in, does not resume this one.
    other = Checkpoint(tmp_path / "fit-b", 5, key)
    other.save(5, b"other fit", "txt")
    for f in (tmp_path / "fit-b").iterdir():
        shutil.copy(f, tmp_path / "fit-a" / f.name)
    assert checkpoint.latest() is None
    (tmp_path / "fit-a" / "step-000005.txt.sig").unlink()
    assert checkpoint.latest() is None


def test_lightgbm_fit_restarts_from_scratch_past_a_tampered_checkpoint(demo, tmp_path, client):
    catalog, ws, _ = demo
    estimator = get_estimator("lightgbm_classifier")
    params = estimator.params({"n_estimators": 10, "num_leaves": 4}, 42)
    feature_version = model_metadata(ws, NAME)["data"]["feature_version"]
    data = fit_data(catalog, ws, NAME, feature_version)
    checkpoint = Checkpoint(tmp_path / "fit", 5, signing.current_key())
    estimator.fit(data, params, checkpoint)  # workers save a signed checkpoint at round 5
    step = tmp_path / "fit" / "step-000005.txt"
    assert estimator.fit(data, params, checkpoint).fit_info["resumed_from"] == 5

    step.write_text(_tiny_booster().model_to_string())
    redone = estimator.fit(data, params, checkpoint)
    assert redone.fit_info["resumed_from"] == 0 and redone.fit_info["iterations"] == 10


def test_skops_file_with_a_type_outside_its_estimators_list_is_refused(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = np.arange(40.0).reshape(-1, 2), np.arange(20) % 2
    # numpy.load passed the old "numpy." prefix rule; no logistic_regression pipeline holds it.
    model = Pipeline([("read", FunctionTransformer(np.load)), ("model", LogisticRegression())])
    model.steps[-1][1].fit(x, y)
    ws = wb.Workspace(tmp_path)
    predictor = Predictor("sklearn", model, "classification", ["a", "b"], {})
    register_model(ws, "odd", predictor, {"estimator": "logistic_regression"})
    with pytest.raises(wb.WorkbenchError, match=r"does not store: \['numpy.load'\]"):
        load_predictor(ws, "odd")


def test_edited_aliases_are_refused_until_signed_on_purpose(ws):
    """Whoever may write the workspace could point production at any version (an old, weak
    one) by editing aliases.json: the aliases are signed, and an edit is refused."""
    path = ws.path("models", NAME, "aliases.json")
    production = wb.ml.registry.aliases(ws, NAME)["production"]
    predictor = load_predictor(ws, NAME, production)
    weak = register_model(ws, NAME, predictor, {"estimator": "lightgbm_classifier"}).version
    _edit_json(path, lambda a: a["stacks"]["production"].append(weak))
    with pytest.raises(SignatureError, match=r"aliases.json.*changed after signing"):
        load_predictor(ws, NAME)
    with pytest.raises(SignatureError, match="changed after signing"):
        wb.run_pipeline(wb.load_catalog(DEMO_CATALOG), ws, [f"score:{NAME}"], upstream=False)

    _edit_json(path, lambda a: a.pop("signature"))  # a file from before aliases were signed
    with pytest.raises(SignatureError, match=r"is not signed.*resign .*--trust-unsigned"):
        load_predictor(ws, NAME)
    done = _cli(ws, "model", "resign", NAME, "--trust-unsigned")
    assert done.exit_code == 0, done.output
    assert "aliases signed" in done.output
    assert load_predictor(ws, NAME).fit_info["version"] == weak  # trusted on purpose


def test_aliases_of_one_model_do_not_pass_for_another(ws):
    source = ws.path("models", NAME, "aliases.json")
    other = ws.path("models", "other_model", "aliases.json")
    other.parent.mkdir(parents=True)
    shutil.copytree(ws.path("models", NAME, "1"), other.parent / "1")
    shutil.copy(source, other)
    with pytest.raises(SignatureError, match="changed after signing"):
        wb.ml.registry.aliases(ws, "other_model")
