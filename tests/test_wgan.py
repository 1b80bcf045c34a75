"""WGAN: the gradient penalty, weight clipping, the critic schedule and a tiny run per variant."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import zoo.api as z
from zoo.contract.blocks import gradient_penalty
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import Batch, ModelInfo
from zoo.errors import UsageError
from zoo.plugins.wgan import WGAN

TINY = {"nz": 8, "ngf": 4, "ndf": 4}
SPEC = ImageSpec(channels=1, size=16)


def _model(**config) -> WGAN:
    torch.manual_seed(0)
    model = z.build(ModelInfo("wgan", {**TINY, **config}, SPEC))
    model.optimizers = model.configure_optimizers()
    return model


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    # D(x) = w.x + b has gradient w everywhere, so the penalty is (||w|| - 1)^2 for any x_hat
    critic = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    real, fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    expected = (critic[1].weight.norm() - 1) ** 2
    torch.testing.assert_close(gradient_penalty(critic, real, fake), expected)


def test_gradient_penalty_matches_per_sample_autograd():
    critic = _model(penalty="gp").critic
    real, fake = torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)
    torch.manual_seed(1)
    penalty = gradient_penalty(critic, real, fake)

    torch.manual_seed(1)
    a = torch.rand(4)
    terms = []
    for i in range(4):
        x = (real[i : i + 1] + a[i] * (fake[i : i + 1] - real[i : i + 1])).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        terms.append((g.norm() - 1) ** 2)
    torch.testing.assert_close(penalty, torch.stack(terms).mean())
    # the graph is kept, so the penalty trains the critic's weights
    penalty.backward()
    assert critic.net[0].weight.grad.abs().sum() > 0
    assert critic.net[-1].weight.grad.abs().sum() > 0


def test_gp_critic_has_no_batchnorm():
    assert not any(isinstance(m, nn.BatchNorm2d) for m in _model(penalty="gp").critic.modules())


def test_critic_weights_are_clipped_after_a_step():
    # a large learning rate pushes weights far past the bound; clipping must pull them back
    model = _model(penalty="clip", rmsprop_lr=0.1, n_critic=2, burst_steps=0)
    k = model.batches_per_step(1)
    model.train_step(Batch(torch.rand(8 * k, 1, 16, 16) * 2 - 1), 1)
    weights = torch.cat([p.detach().flatten() for p in model.critic.parameters()])
    assert weights.abs().max() <= 0.01
    assert weights.abs().max() == pytest.approx(0.01)


def test_critic_schedule():
    clip = _model(penalty="clip")
    assert [clip.batches_per_step(s) for s in (0, 24, 25, 499, 500, 501, 1000)] == [
        100,
        100,
        5,
        5,
        100,
        5,
        100,
    ]
    gp = _model(penalty="gp")
    assert {gp.batches_per_step(s) for s in (0, 24, 500)} == {5}


def test_train_step_splits_the_batch_into_critic_steps(monkeypatch):
    model = _model(penalty="gp", n_critic=3)
    seen = []
    forward = model.critic.forward
    monkeypatch.setattr(model.critic, "forward", lambda x: seen.append(len(x)) or forward(x))
    losses = model.train_step(Batch(torch.rand(12, 1, 16, 16) * 2 - 1), 0)
    # per critic step: real, fake, interpolates; then the generator's fakes
    assert seen == [4, 4, 4] * 3 + [4]
    assert set(losses) == {"wasserstein", "g_loss", "gradient_penalty"}


def _images(result):
    return getattr(result, "images", result)


@pytest.mark.parametrize("penalty", ["clip", "gp"])
def test_tiny_run_samples_the_same_in_torch_and_onnx(tmp_path, penalty):
    run = tmp_path / "run"
    over = {"image_size": 16, "batch_size": 4, "log_every": 3, "sample_every": 3}
    config = {**TINY, "penalty": penalty, "n_critic": 2}
    if penalty == "clip":
        config |= {"burst_critic": 3, "burst_steps": 1}
    z.train("wgan", data="digits", out=run, steps=3, overrides={**over, **config}, progress=False)
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "wasserstein" in row

    torch_images = _images(z.sample(run, n=5, seed=1, device="cpu"))
    onnx_file = tmp_path / "wgan.onnx"
    z.export(run, "onnx", onnx_file)
    onnx_images = _images(z.sample(onnx_file, n=5, seed=1, runtime="onnx"))
    torch.testing.assert_close(onnx_images, torch_images, atol=1e-4, rtol=0)
    assert z.export(run, "safetensors", tmp_path / "wgan.safetensors")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"adam_lr": 1e-3},
            "'adam_lr' applies to penalty 'gp', not 'clip': drop it or set penalty=gp",
        ),
        ({"penalty": "gp", "clip": 0.1}, "'clip' applies to penalty 'clip', not 'gp'"),
        ({"penalty": "none"}, "bad value 'none' for 'penalty' in --set: choose from clip, gp"),
    ],
)
def test_the_two_constraints_settings_do_not_mix(tmp_path, overrides, message):
    """A setting of the other constraint would be silently ignored, so it is refused."""
    with pytest.raises(UsageError, match=message):
        z.train("wgan", data="digits", out=tmp_path / "run", steps=1, overrides=overrides)
    assert not (tmp_path / "run").exists()
