"""PGGAN: fade-in blends, the growth schedule, equalised lr, minibatch stddev, pixel norm, EMA,
exact mid-schedule resume and export."""

from __future__ import annotations

import math

import onnx
import pytest
import torch
import torch.nn.functional as F

import zoo.api as z
from zoo.base.runs import latest_checkpoint
from zoo.contract.blocks import OBJECTIVES, gradient_penalty, r1_penalty, wasserstein_estimate
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import ModelInfo
from zoo.errors import UsageError
from zoo.plugins.pggan import (
    PGGAN,
    EqualConv2d,
    EqualLinear,
    minibatch_stddev,
    pixel_norm,
)
from zoo.store.checkpoint import load_weights

TINY = {"nz": 8, "fmap_base": 32, "fmap_max": 8, "fade_steps": 4, "stable_steps": 2}


def tiny(size: int = 16, **config) -> PGGAN:
    torch.manual_seed(0)
    return z.build(ModelInfo("pggan", {**TINY, **config}, ImageSpec(1, size)))


def test_generator_fade_in_blends_upsampled_old_path_into_new_block():
    g = tiny().generator
    z_ = torch.randn(3, 8)
    seen = {}
    for i in (0, 1):
        g.to_rgb[i].register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, out))
    mid = g(z_, 1, 0.5)
    old, new = F.interpolate(seen[0], scale_factor=2, mode="nearest"), seen[1]
    assert torch.equal(g(z_, 1, 0.0), old)
    assert torch.equal(g(z_, 1, 0.0), F.interpolate(g(z_, 0, 1.0), scale_factor=2))
    assert torch.equal(g(z_, 1, 1.0), new)
    torch.testing.assert_close(mid, 0.5 * old + 0.5 * new)


def test_discriminator_and_reals_fade_in_mirror_the_generator():
    m = tiny()
    x = torch.randn(4, 1, 8, 8)
    pooled = F.avg_pool2d(x, 2)
    assert torch.equal(m.discriminator(x, 1, 0.0), m.discriminator(pooled, 0, 1.0))
    full = torch.randn(4, 1, 16, 16)
    at8 = F.avg_pool2d(full, 2)
    assert torch.equal(m.reals(full, 1, 1.0), at8)
    assert torch.equal(m.reals(full, 1, 0.0), F.interpolate(F.avg_pool2d(at8, 2), scale_factor=2))
    assert torch.equal(m.reals(full, 2, 1.0), full)


def test_schedule_is_a_function_of_step_and_on_load_restores_it():
    m = tiny()  # 4x4 for 2 steps, then (fade 4, stabilise 2) at 8x8 and at 16x16
    expected = [(0, 1.0)] * 2 + [(1, a / 4) for a in range(4)] + [(1, 1.0)] * 2
    expected += [(2, a / 4) for a in range(4)] + [(2, 1.0)] * 5
    assert [m.schedule(s) for s in range(len(expected))] == expected
    fresh = tiny()
    fresh.on_load(9)
    assert (fresh.stage, fresh.alpha) == (2, 0.25)


def test_equalised_lr_scales_unit_normal_weights_by_he_constant_at_run_time():
    conv = EqualConv2d(3, 5, 3)
    assert conv.scale == pytest.approx(math.sqrt(2 / 27))
    x = torch.randn(2, 3, 6, 6)
    expected = F.conv2d(x, conv.weight * math.sqrt(2 / 27), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    big = EqualConv2d(64, 64, 3)
    assert big.weight.std().item() == pytest.approx(1.0, abs=0.02)
    linear = EqualLinear(50, 4)
    assert linear.scale == pytest.approx(math.sqrt(2 / 50))
    v = torch.randn(3, 50)
    torch.testing.assert_close(linear(v), v @ (linear.weight * math.sqrt(2 / 50)).T)


def test_minibatch_stddev_appends_group_stddev_channel():
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 2, 3, 3)
    y = minibatch_stddev(x, 4)
    assert y.shape == (8, 3, 3, 3)
    assert torch.equal(y[:, :2], x)
    # groups are samples {0, 2, 4, 6} and {1, 3, 5, 7}: population variance 5 in both
    torch.testing.assert_close(y[:, 2], torch.full((8, 3, 3), math.sqrt(5.0)))
    x = torch.randn(8, 3, 2, 2)
    y = minibatch_stddev(x, 4)[:, 3, 0, 0]
    for n in range(8):
        group = x[n % 2 :: 2]
        assert y[n].item() == pytest.approx(group.std(dim=0, unbiased=False).mean().item(), 1e-5)
    assert minibatch_stddev(torch.randn(6, 2, 4, 4), 4).shape == (6, 3, 4, 4)  # group of 3


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = 5 * torch.randn(4, 16, 3, 3)
    ms = pixel_norm(x).pow(2).mean(dim=1)
    torch.testing.assert_close(ms, torch.ones_like(ms))


def test_ema_update_math():
    m = tiny(ema_decay=0.9)
    p, e = next(m.generator.parameters()), next(m.generator_ema.parameters())
    with torch.no_grad():
        p.fill_(1.0)
        e.fill_(3.0)
    m.update_ema(step=1000)
    torch.testing.assert_close(e, torch.full_like(e, 0.9 * 3.0 + 0.1 * 1.0))
    m.update_ema(step=0)  # ramp-up: decay (1 + 0) / (10 + 0)
    torch.testing.assert_close(e, torch.full_like(e, 0.1 * 2.8 + 0.9 * 1.0))
    assert not any(q.requires_grad for q in m.generator_ema.parameters())
    assert m.inference == ("generator_ema",)


def test_bad_sizes_and_minibatches_are_usage_errors():
    with pytest.raises(UsageError, match="such as 28, 32 or 64"):
        tiny(36)  # 36 -> 18 -> 9: no start between 4 and 7
    with pytest.raises(UsageError, match="resolution 64"):
        tiny(16, minibatch={"64": 8})
    assert tiny(16, minibatch={"4": 8}).minibatch == [8, None, None]


def _train(out, steps, overrides=None, **kw):
    defaults = {"image_size": 16, "log_every": 2, "sample_every": 100, "checkpoint_every": 100}
    overrides = {**defaults, **TINY, "minibatch": {"16": 4}, **(overrides or {})}
    return z.train(
        "pggan",
        data="digits",
        out=out,
        steps=steps,
        batch_size=8,
        overrides=overrides,
        progress=False,
        **kw,
    )


def test_resume_mid_fade_in_matches_an_uninterrupted_run(tmp_path):
    _train(tmp_path / "a", 7)
    _train(tmp_path / "b", 3)  # stops a quarter of the way through fading in 8x8
    z.train("pggan", out=tmp_path / "b", steps=7, resume=True, progress=False)
    a = load_weights(latest_checkpoint(tmp_path / "a") / "model.safetensors")
    b = load_weights(latest_checkpoint(tmp_path / "b") / "model.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("generator_ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_end_to_end_mid_schedule_export_matches_in_onnx(tmp_path):
    run = tmp_path / "run"
    _train(run, 7)  # stabilising 8x8: exported at 8x8, upsampled to 16x16
    torch_images = z.sample(run, n=5, seed=0).images
    assert torch_images.shape == (5, 1, 16, 16)
    assert torch_images.abs().max() <= 1
    assert torch.equal(torch_images[..., ::2, ::2], torch_images[..., 1::2, 1::2])
    (path,) = z.export(run, "onnx", tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["resolution"] == "8x8" and "upsampled" in meta["note"]
    onnx_images = z.sample(path, n=5, seed=0, runtime="onnx").images
    torch.testing.assert_close(onnx_images, torch_images, atol=1e-4, rtol=0)
    (weights,) = z.export(run, "safetensors", tmp_path / "m.safetensors")
    assert torch.equal(z.sample(weights, n=5, seed=0).images, torch_images)


@pytest.mark.parametrize(("size", "resolutions"), [(28, [7, 14, 28]), (32, [4, 8, 16, 32])])
def test_growth_starts_at_the_size_halved_down_to_4_to_7(size, resolutions):
    m = tiny(size)
    assert [m.start << s for s in range(m.stages)] == resolutions
    z = torch.randn(3, m.config["nz"])
    for stage, res in enumerate(resolutions):
        assert m.generator(z, stage, 0.5).shape[-1] == res
        assert m.discriminator(torch.randn(3, 1, res, res), stage, 0.5).shape == (3,)


def test_r1_penalty_is_the_squared_gradient_norm_on_reals():
    # D(x) = sum(x^2) / 2 has gradient x, so R1 is the mean of ||x||^2
    real = torch.randn(5, 1, 4, 4)
    expected = real.flatten(1).pow(2).sum(1).mean()
    torch.testing.assert_close(r1_penalty(lambda x: x.pow(2).sum((1, 2, 3)) / 2, real), expected)


def test_other_objectives_take_a_lazy_r1_penalty_in_place_of_gp():
    m = tiny(loss="non-saturating", r1_gamma=2.0, penalty_every=3)
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)

    def critic(x):
        return m.discriminator(x, 0, 1.0)

    plain = OBJECTIVES["non-saturating"].discriminator(critic(real), critic(fake), 1.0)
    mix = torch.rand(4, 1, 1, 1)  # unused: R1 looks at the reals alone
    on, logs = m.discriminator_loss(critic, real, fake, step=3, mix=mix)
    off, _ = m.discriminator_loss(critic, real, fake, step=4, mix=mix)
    torch.testing.assert_close(off, plain)  # no penalty between the lazy steps
    torch.testing.assert_close(on, plain + 2.0 / 2 * 3 * r1_penalty(critic, real))
    assert set(logs) == {"d_real", "d_fake"} and 0 < logs["d_real"].item() < 1


def test_a_lazy_gradient_penalty_weighs_every_times_as_much_on_its_steps():
    m = tiny(penalty_every=3)
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)

    def critic(x):
        return m.discriminator(x, 0, 1.0)

    d_real, d_fake = critic(real), critic(fake)
    plain = -wasserstein_estimate(d_real, d_fake) + 0.001 * d_real.pow(2).mean()
    mix = torch.rand(4, 1, 1, 1)  # the step's draw from batch.noise
    gp = gradient_penalty(critic, real, fake, mix)
    on, logs = m.discriminator_loss(critic, real, fake, step=6, mix=mix)
    off, off_logs = m.discriminator_loss(critic, real, fake, step=7, mix=mix)
    torch.testing.assert_close(on, plain + 10.0 * 3 * gp)
    torch.testing.assert_close(off, plain)
    # logged as 3 * gp once in 3 steps, so the logged running mean is the mean penalty
    torch.testing.assert_close(logs["gp"], 3 * gp)
    assert off_logs["gp"].item() == 0


def test_a_non_saturating_pggan_trains_and_samples(tmp_path):
    out = tmp_path / "run"
    _train(out, 8, overrides={"loss": "non-saturating", "penalty_every": 2})
    images = z.sample(out, 4, seed=0).images
    assert images.shape == (4, 1, 16, 16) and torch.isfinite(images).all()
