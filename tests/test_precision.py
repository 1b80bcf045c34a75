"""--precision auto: bf16 on a CPU only where the recipe's quality holds, the CPU computes it
natively and a measurement shows it faster; the measurement leaves the run as it was."""

import json

import pytest
import torch
from safetensors.torch import load_file

from zoo import api
from zoo.errors import UsageError
from zoo.training import precision as prec

CPU = torch.device("cpu")


def never() -> dict[str, float]:
    raise AssertionError("measured without need")


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setattr(prec, "cpu_features", lambda: ["AVX2", "AVX-512", "AVX-512 BF16"])


def test_auto_takes_bf16_only_where_all_three_conditions_hold(native, monkeypatch):
    fast, slow = {"fp32": 100.0, "bf16": 150.0}, {"fp32": 100.0, "bf16": 105.0}
    assert prec.choose_precision("auto", CPU, True, lambda: fast) == ("bf16", fast)
    assert prec.choose_precision("auto", CPU, True, lambda: slow) == ("fp32", slow)
    assert prec.choose_precision("auto", CPU, False, never) == ("fp32", None)
    assert prec.choose_precision("fp32", CPU, True, never) == ("fp32", None)
    assert prec.choose_precision("bf16", CPU, False, never) == ("bf16", None)
    assert prec.choose_precision("auto", torch.device("cuda"), False, never) == ("bf16", None)
    monkeypatch.setattr(prec, "cpu_features", lambda: ["AVX2"])  # bf16 emulated: never faster
    assert prec.choose_precision("auto", CPU, True, never) == ("fp32", None)
    with pytest.raises(UsageError, match="use auto, fp32, bf16"):
        prec.choose_precision("fp16", CPU, True, never)


def train(out, precision, allow):
    api.train("gan", data="digits", out=out, steps=3, device="cpu", precision=precision,
              overrides={"auto_bf16": allow, "checkpoint_every": 3}, progress=False)  # fmt: skip
    weights = load_file(out / "checkpoints" / "step-00000003" / "model.safetensors")
    return weights, json.loads((out / "config.json").read_text())["train"]


def test_the_measurement_leaves_the_run_as_it_was(native, monkeypatch, tmp_path):
    plain, record = train(tmp_path / "plain", "fp32", False)
    assert "precision_images_per_s" not in record
    monkeypatch.setattr(prec, "BF16_GAIN", float("inf"))  # measures, then keeps float32
    measured, record = train(tmp_path / "measured", "auto", True)
    assert record["precision"] == "fp32"
    assert set(record["precision_images_per_s"]) == {"fp32", "bf16"}
    assert all(v > 0 for v in record["precision_images_per_s"].values())
    assert plain.keys() == measured.keys()
    assert all(torch.equal(plain[k], measured[k]) for k in plain)  # same batches, noise, weights


def test_auto_trains_in_bf16_when_it_pays_and_resumes_in_it(native, monkeypatch, tmp_path):
    monkeypatch.setattr(prec, "BF16_GAIN", 0.0)
    _, record = train(tmp_path / "r", "auto", True)
    assert record["precision"] == "bf16"
    api.train("gan", out=tmp_path / "r", steps=4, resume=True, device="cpu", progress=False)
    resumed = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert resumed["precision"] == "bf16"  # not measured again: the record keeps its reason
    assert resumed["precision_images_per_s"] == record["precision_images_per_s"]


def test_bf16_sampling_is_asked_for_by_name_and_stays_close(zoo):
    fp32 = api.sample("dcgan-mnist", 16, seed=0, runtime="torch").images
    bf16 = api.sample("dcgan-mnist", 16, seed=0, runtime="torch-bf16")
    assert bf16.provider == "torch-bf16:cpu" and bf16.images.dtype == torch.float32
    diff = (bf16.images - fp32).abs().mean()
    assert 0 < diff < 0.05  # rounded products, the same digits
    r = zoo("sample", "dcgan-mnist", "-n", "4", "--runtime", "torch-bf16", "--out", "b.png")
    assert r.code == 0 and "(torch-bf16:cpu;" in r.out, r.err


def test_a_card_names_the_precision_where_auto_may_pick_bf16():
    """dcgan-mnist's recipe lets auto train in bf16, so its card's commands say which
    precision made the weights; a recipe without it keeps the plain command."""
    from zoo.evaluation.publish import Published, model_card

    def card(name):
        loaded = api.load(name)
        metrics = dict.fromkeys(("fld", "kid", "is", "precision", "recall", "density",
                                 "coverage"), 1.0)  # fmt: skip
        p = Published(name, loaded.path.parent, "float16", metrics, 1.0, "0" * 64, 1, 1, 60.0)
        return model_card(p, loaded.model, loaded.info, "s", "", "registry.toml")

    assert "zoo train dcgan-mnist --precision fp32 --out runs/dcgan-mnist" in card("dcgan-mnist")
    assert "zoo train vae-mnist --out runs/vae-mnist" in card("vae-mnist")


def test_a_step_that_fails_in_bf16_trains_in_float32(native, monkeypatch, tmp_path):
    """An op without a bf16 kernel fails the measurement's bf16 steps, not the run."""
    import contextlib

    from zoo.training import trainer

    @contextlib.contextmanager
    def failing(precision, device):
        if precision == "bf16":
            raise RuntimeError("no bf16 kernel")
        yield

    monkeypatch.setattr(trainer, "autocast", failing)
    _, record = train(tmp_path / "r", "auto", True)
    assert record["precision"] == "fp32" and record["precision_images_per_s"]["bf16"] == 0.0
