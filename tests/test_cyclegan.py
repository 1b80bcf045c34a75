"""CycleGAN: the image pool, the loss terms, the lr schedule, resume, and ONNX export at other
spatial sizes."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

import zoo.api as z
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import Batch, SampleRequest
from zoo.errors import UsageError
from zoo.plugins import CycleGANConfig, cyclegan
from zoo.registry.discovery import get_registry
from zoo.store.checkpoint import load_weights

TINY = {"ngf": 4, "ndf": 8, "blocks": 1, "d_layers": 1, "pool_size": 4}
DATA = "unpaired:digits,digits"


def _images(result):
    return getattr(result, "images", result)


def _model(size: int = 16) -> cyclegan.CycleGAN:
    torch.manual_seed(0)
    config = {**CycleGANConfig.defaults(), **TINY}
    return cyclegan.CycleGAN(config, ImageSpec(channels=1, size=size))


def _reference_pool(pool: list[torch.Tensor], size: int, images, draws, slots):
    """junyanz ImagePool.query, written out with the same random draws."""
    out = []
    for image, u, slot in zip(images, draws, slots):
        if len(pool) < size:
            pool.append(image)
            out.append(image)
        elif u < 0.5:
            out.append(pool[slot])
            pool[slot] = image
        else:
            out.append(image)
    return torch.stack(out)


def test_image_pool_fills_then_swaps_like_the_reference():
    pool = cyclegan.ImagePool(5, (1, 2, 2))
    reference: list[torch.Tensor] = []
    for i, n in enumerate((3, 4, 6, 6)):  # the second query fills the pool mid-batch
        images = torch.randn(n, 1, 2, 2)
        torch.manual_seed(i)
        draws, slots = torch.rand(n).tolist(), torch.randint(5, (n,)).tolist()
        torch.manual_seed(i)
        got = pool.query(images)
        torch.testing.assert_close(got, _reference_pool(reference, 5, images, draws, slots))
        assert int(pool.count) == len(reference)
        torch.testing.assert_close(pool.images[: len(reference)], torch.stack(reference))
    assert int(pool.count) == 5


def test_image_pool_returns_current_or_stored_images():
    pool = cyclegan.ImagePool(50, (1, 1, 1))
    first = torch.arange(50.0).view(50, 1, 1, 1)
    torch.testing.assert_close(pool.query(first), first)  # filling: returned as given
    torch.manual_seed(0)
    current = torch.arange(100.0, 200.0).view(100, 1, 1, 1)
    before = pool.images.clone()
    out = pool.query(current).flatten()
    swapped = out != current.flatten()
    assert 30 < int(swapped.sum()) < 70  # each image is swapped with probability 0.5
    # nothing is lost or duplicated: what went out plus what stays is what was there plus
    # what came in
    kept = torch.cat([out, pool.images.flatten()]).sort().values
    torch.testing.assert_close(kept, torch.cat([before.flatten(), current.flatten()]).sort().values)
    assert pool.size == 50 and int(pool.count) == 50


def test_pool_is_in_the_checkpointed_state():
    state = _model().state_dict()
    assert state["pool_a.images"].shape == (4, 1, 16, 16)
    assert {"pool_a.count", "pool_b.count", "pool_b.images"} <= set(state)
    assert not any(k.startswith("pool") for k in _model().inference_state())


def test_cycle_and_identity_losses_vanish_for_identity_generators():
    model = _model()
    model.gen_a2b, model.gen_b2a = nn.Identity(), nn.Identity()
    a, b = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    losses, fake_b, fake_a = model.generator_losses(a, b)
    for key in ("cycle_a", "cycle_b", "identity_a", "identity_b"):
        assert losses[key] == 0
    assert torch.equal(fake_b, a) and torch.equal(fake_a, b)


def test_loss_terms_match_a_direct_computation():
    model = _model()
    a, b = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    losses, _, _ = model.generator_losses(a, b)
    g_ab, g_ba = model.gen_a2b, model.gen_b2a
    expect = {
        "cycle_a": 10 * (g_ba(g_ab(a)) - a).abs().mean(),
        "cycle_b": 10 * (g_ab(g_ba(b)) - b).abs().mean(),
        "identity_a": 5 * (g_ba(a) - a).abs().mean(),
        "identity_b": 5 * (g_ab(b) - b).abs().mean(),
        "g_adv_a2b": ((model.disc_b(g_ab(a)) - 1) ** 2).mean(),
        "g_adv_b2a": ((model.disc_a(g_ba(b)) - 1) ** 2).mean(),
    }
    assert set(losses) == set(expect)
    for key, value in expect.items():
        torch.testing.assert_close(losses[key], value)


def test_lr_constant_for_half_the_run_then_linear_to_zero():
    assert [cyclegan.lr_factor(s, 100) for s in (0, 49, 50, 75, 99)] == [1, 1, 1, 0.5, 0.02]
    assert cyclegan.lr_factor(10, 0) == 1  # no known length: constant
    model = _model(8)
    model.optimizers = model.configure_optimizers()
    model.total_steps = 10
    images = torch.rand(2, 1, 8, 8) * 2 - 1
    model.train_step(Batch(images, images_b=images), 7)
    for opt in model.optimizers.values():
        assert opt.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.6)


def test_requests_need_inputs_with_sides_divisible_by_4():
    model = _model()
    gen = torch.Generator()
    with pytest.raises(UsageError):
        model.check_request(SampleRequest(2, gen))
    with pytest.raises(UsageError):
        model.check_request(SampleRequest(2, gen, inputs=torch.zeros(2, 1, 30, 30)))
    family = get_registry().family("cyclegan", load=False)  # options: checked by the core
    with pytest.raises(UsageError, match="bad direction 'x': choose from a2b, b2a"):
        family.check_sample_options({"direction": "x"})
    with pytest.raises(UsageError, match="cyclegan does not take the sample option 'steps'"):
        family.check_sample_options({"steps": 3})


@pytest.mark.parametrize(("downsamples", "multiple"), [(0, 1), (1, 2), (2, 4)])
def test_fewer_downsamples_keep_the_generator_local(downsamples, multiple):
    # each downsample is a stride-2 convolution undone after the blocks; the blocks work at
    # 2 ** downsamples times the base width, and inputs need sides divisible by that factor
    gen = cyclegan.Generator(1, 4, 1, downsamples).eval()
    strided = [m for m in gen.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    blocks = [m for m in gen.modules() if isinstance(m, cyclegan.ResnetBlock)]
    assert len(strided) == downsamples
    assert blocks[0].net[1].in_channels == 4 * 2**downsamples
    assert gen(torch.rand(2, 1, 16, 16)).shape == (2, 1, 16, 16)
    model = cyclegan.CycleGAN(
        {**CycleGANConfig.defaults(), **TINY, "downsamples": downsamples}, ImageSpec(1, 16)
    )
    assert model.size_multiple == multiple
    if multiple > 1:
        with pytest.raises(UsageError, match=f"divisible by {multiple}"):
            model.check_request(
                SampleRequest(1, torch.Generator(), inputs=torch.zeros(1, 1, 17, 17))
            )


def _train(run, steps, resume=False):
    overrides = {} if resume else {**TINY, "image_size": 16, "log_every": 2}
    if not resume:
        overrides |= {"sample_every": 2, "checkpoint_every": 2}
    return z.train(
        "cyclegan",
        data=None if resume else DATA,
        out=run,
        steps=steps,
        batch_size=None if resume else 4,
        overrides=overrides,
        resume=resume,
        progress=False,
    )


def test_resume_continues_exactly(tmp_path):
    run = tmp_path / "run"
    _train(run, 4)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints" / "step-00000004")
    _train(copy, 4, resume=True)
    full = load_weights(run / "checkpoints" / "step-00000004" / "model.safetensors")
    resumed = load_weights(copy / "checkpoints" / "step-00000004" / "model.safetensors")
    assert int(full["pool_a.count"]) == 4  # the first batch of 4 filled it
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, msg=key)


def test_train_export_and_onnx_parity_at_other_sizes(tmp_path):
    run = tmp_path / "run"
    _train(run, 2)
    assert (run / "samples" / "step-00000002.png").exists()
    files = z.export(run, "onnx", tmp_path / "cg.onnx")
    assert sorted(p.name for p in files) == ["cg.a2b.onnx", "cg.b2a.onnx"]
    z.export(run, "safetensors", tmp_path / "cg.safetensors")
    gen = torch.Generator().manual_seed(0)
    by_direction = {}
    for size in (16, 36, 40):
        inputs = torch.rand(3, 1, size, size, generator=gen) * 2 - 1
        for direction in ("a2b", "b2a"):
            kwargs = {"inputs": inputs, "options": {"direction": direction}}
            by_torch = _images(z.sample(tmp_path / "cg.safetensors", n=3, **kwargs))
            by_onnx = _images(z.sample(files[0], n=3, runtime="onnx", **kwargs))
            by_direction[direction] = by_torch
            assert by_torch.shape == (3, 1, size, size)
            torch.testing.assert_close(by_onnx, by_torch, atol=1e-4, rtol=0)
    default = _images(z.sample(tmp_path / "cg.safetensors", n=3, inputs=inputs))
    torch.testing.assert_close(default, by_direction["a2b"])


def test_sampling_names_the_direction_and_warns_about_stretched_inputs(tmp_path, zoo):
    from PIL import Image

    Image.new("L", (8, 8), 255).save(tmp_path / "raw8.png")  # an unframed 8x8 digit's size
    r = zoo("sample", "cyclegan-digits", "--input", str(tmp_path / "raw8.png"),
            "--out", str(tmp_path / "t.png"))  # fmt: skip
    assert r.code == 0, r.err
    assert "direction a2b" in r.out
    assert "under half the model's 32x32 and are stretched" in r.err
    assert "unpaired:digits-framed" in r.err  # what the model learned from
