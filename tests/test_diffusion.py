"""The diffusion family and zoo's multi-step samplers (zoo/contract/diffusion.py,
plugins/diffusion.py): schedules and samplers against closed forms, training, both runtimes,
and sampling an export without torch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo.api as api
from zoo.base.torch_random import TorchGenerator
from zoo.contract.diffusion import Diffusion, guided, sample
from zoo.contract.metadata import ImageSpec, ModelInfo
from zoo.contract.model import Batch, Noise
from zoo.errors import UsageError
from zoo.runtime.latents import LatentQuery
from zoo.testing import FamilyContract

TINY = {"width": 8, "mults": [1, 2], "timesteps": 100}


class TestDiffusion(FamilyContract):
    family = "diffusion"
    config = TINY
    sample_options = [{"steps": 3}, {"sampler": "ddpm", "steps": 4}]


class TestFlow(FamilyContract):
    family = "diffusion"
    config = {**TINY, "objective": "velocity", "sampler": "heun", "conditional": True}
    sample_options = [{"steps": 3, "guidance": 2.0}, {"sampler": "euler", "steps": 2}]


# -- schedules and samplers, against closed forms ---------------------------------------------


def test_the_schedules_endpoints():
    linear = Diffusion(timesteps=1000).alpha_bar()
    assert linear[0] == pytest.approx(1 - 1e-4)
    assert linear[-1] == pytest.approx(np.prod(1 - np.linspace(1e-4, 0.02, 1000)))
    assert linear[-1] < 1e-4 and np.all(np.diff(linear) < 0)
    cosine = Diffusion(schedule="cosine", timesteps=1000).alpha_bar()
    s = 0.008
    f = [math.cos((t / 1000 + s) / (1 + s) * math.pi / 2) ** 2 for t in (0, 500)]
    assert cosine[499] == pytest.approx(f[1] / f[0], rel=1e-6)  # abar(t) = f(t) / f(0)
    assert cosine[-1] < 1e-6 and np.all(np.diff(cosine) < 0)


def _gaussian_eps(d: Diffusion, mu: float, s: float):
    """The exact noise prediction for data x_0 ~ N(mu, s^2): E[eps | x_t]."""
    abar = d.alpha_bar()

    def network(x, t, labels):
        a = abar[np.rint(t * d.timesteps).astype(int) - 1][:, None, None, None]
        return (np.sqrt(1 - a) * (x - np.sqrt(a) * mu) / (a * s**2 + 1 - a)).astype(np.float32)

    return network


SAMPLERS = [("ddpm", None, 1000), ("ddim", 1.0, 1000), ("ddim", 0.5, 1000), ("ddim", 0.0, 1000)]


@pytest.mark.parametrize(("sampler", "eta", "steps"), SAMPLERS)
def test_ddim_and_ancestral_sampling_reach_the_data_distribution(sampler, eta, steps):
    """With the exact predictor of Gaussian data, DDPM's ancestral sampler and DDIM at any
    eta draw that Gaussian (DDIM with eta 1 is DDPM in distribution). On a coarse
    subsequence they draw it too narrow (deterministic DDIM: std 0.175 for 0.2 at 50 steps,
    0.192 at 200), the discretisation error a model card's steps curve shows."""
    d = Diffusion(timesteps=1000)  # DDPM's: abar_T 4e-5, so x_T is as good as pure noise
    mu, s = 0.3, 0.2
    x, _ = sample(d, _gaussian_eps(d, mu, s), TorchGenerator(0), 4000, (1, 1, 1),
                  steps=steps, sampler=sampler, eta=eta)  # fmt: skip
    assert x.mean() == pytest.approx(mu, abs=0.015)
    assert x.std() == pytest.approx(s, rel=0.06)


def test_the_ddpm_sampler_is_ddim_with_eta_one():
    d = Diffusion(timesteps=100)
    net = _gaussian_eps(d, 0.1, 0.3)
    a, _ = sample(d, net, TorchGenerator(3), 64, (1, 4, 4), steps=25, sampler="ddpm")
    b, _ = sample(d, net, TorchGenerator(3), 64, (1, 4, 4), steps=25, sampler="ddim", eta=1.0)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_flow_matchings_straight_lines_reach_their_point(sampler):
    """For data at one point c the exact velocity is (x - c) / t: the paths are straight, so
    Euler and Heun land on c in any number of steps."""
    d = Diffusion(objective="velocity", schedule="flow", sampler="euler")
    c = 0.25

    def velocity(x, t, labels):
        return ((x - c) / t[:, None, None, None]).astype(np.float32)

    x, _ = sample(d, velocity, TorchGenerator(1), 16, (1, 3, 3), steps=3, sampler=sampler)
    np.testing.assert_allclose(x, c, atol=1e-5)


def test_flow_matching_trains_on_the_straight_line_target():
    """The velocity objective's target is eps - x_0 at x_t = (1 - t) x_0 + t eps."""
    torch.manual_seed(0)
    model = api.build(ModelInfo("diffusion", {**TINY, "objective": "velocity",
                                              "sampler": "euler"}, ImageSpec(1, 8)))  # fmt: skip
    seen = {}

    def spy(xt, t, labels):
        seen.update(xt=xt, t=t)
        return torch.zeros_like(xt)

    model.generator.forward = spy
    images = torch.rand(4, 1, 8, 8) * 2 - 1
    loss = model.losses(Batch(images, noise=Noise(0)))
    noise = Noise(0).randn(4, 1, 8, 8)
    t = seen["t"][:, None, None, None]
    torch.testing.assert_close(seen["xt"], (1 - t) * images + t * noise)
    torch.testing.assert_close(loss, ((noise - images) ** 2).mean())


def test_guidance_zero_is_the_unconditional_prediction_and_one_the_conditional():
    calls = []

    def network(x, t, labels):
        calls.append(labels.copy())
        return x + labels[:, None, None, None].astype(np.float32)

    x, t, labels = np.zeros((2, 1, 2, 2), np.float32), np.full(2, 0.5, np.float32), np.array([1, 2])
    assert np.array_equal(guided(network, 10, 0.0)(x, t, labels), x + 10)  # the null class
    assert np.array_equal(guided(network, 10, 1.0)(x, t, labels), x + labels[:, None, None, None])
    three = guided(network, 10, 3.0)(x, t, labels)
    np.testing.assert_allclose(three, 10 + 3 * (labels[:, None, None, None] - 10) + x)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"objective": "score"}', "objective"),
        ('{"sampler": "euler"}', "does not go with epsilon"),
        ('{"steps": 5000}', "--steps 5000"),
        ('{"timesteps": "many"}', "not valid"),
        ('{"shell": 1}', "not valid"),
        ("[1, 2]", "not valid"),
    ],
)
def test_a_crafted_description_is_one_clear_error(text, message):
    with pytest.raises(UsageError, match=message):
        Diffusion.from_json(text)


@pytest.mark.parametrize("config", [{}, {"objective": "velocity", "sampler": "euler"}])
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(config):
    torch.manual_seed(0)
    model = api.build(ModelInfo("diffusion", {**TINY, **config, "lr": 3e-3}, ImageSpec(1, 8)))
    model.optimizers = model.configure_optimizers()
    images = torch.rand(16, 1, 8, 8) * 2 - 1

    def loss() -> float:
        with torch.no_grad():
            return float(sum(model.losses(Batch(images, noise=Noise(s))) for s in range(4)))

    before = loss()
    for step in range(30):
        model.train_step(Batch(images, noise=Noise(step % 4)), step)
    assert loss() < 0.7 * before


# -- both runtimes, and no torch ----------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "run"
    overrides = {**TINY, "objective": "velocity", "sampler": "heun", "conditional": True,
                 "image_size": 16, "log_every": 1}  # fmt: skip
    api.train("diffusion", data="digits", out=out, steps=2, batch_size=8, overrides=overrides,
              progress=False)  # fmt: skip
    return out


OPTIONS = [{"sampler": "heun", "steps": 3}, {"sampler": "euler", "steps": 4, "guidance": 3.0}]


@pytest.mark.parametrize("options", OPTIONS)
def test_torch_and_onnxruntime_sample_the_same_images(flow_run, options):
    by_torch = api.sample(flow_run, 6, seed=2, options=options, runtime="torch")
    by_onnx = api.sample(flow_run, 6, seed=2, options=options, runtime="onnx")
    torch.testing.assert_close(by_onnx.images, by_torch.images, atol=2e-4, rtol=0)


def test_zoo_sample_runs_the_sampler_without_torch(flow_run, tmp_path, zoo_no_torch):
    api.onnx_files(api.load(flow_run))  # the export, cached once
    args = ["sample", str(flow_run), "-n", "4", "--steps", "3", "--label", "5"]
    r = zoo_no_torch(*args, "--out", "free.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "CPUExecutionProvider" in r.stdout and "steps 3" in r.stdout
    free = np.load(tmp_path / "free.npz")
    assert free["labels"].tolist() == [5] * 4
    expected = api.sample(flow_run, 4, seed=0, labels=[5] * 4, options={"steps": 3},
                          runtime="torch").images  # fmt: skip
    pixels = expected.add(1).mul(127.5).round().clamp(0, 255).numpy().astype(int)
    assert np.abs(free["images"].astype(int) - pixels).max() <= 1


def test_sampling_options_are_checked(flow_run, zoo):
    r = zoo("sample", str(flow_run), "--sampler", "ddim", "--out", "x.png")
    assert r.code == 2 and "does not go with velocity" in r.err
    r = zoo("sample", str(flow_run), "--steps", "0", "--out", "x.png")
    assert r.code == 2 and "steps" in r.err
    r = zoo("train", "diffusion", "--set", "sampler=heun", "--steps", "1", "--out", "y")
    assert r.code == 2 and "does not go with objective 'epsilon'" in r.err


def test_zoo_eval_scores_the_samples_of_the_options_given(zoo):
    """The steps curve of a card is `zoo eval --steps K` at each K."""
    reports = {}
    for steps in ("1", "3"):
        r = zoo("eval", "flow-mnist", "-n", "20", "--steps", steps, "--guidance", "2",
                "--no-anchors", "--json")  # fmt: skip
        assert r.code == 0, r.err
        reports[steps] = json.loads(r.out)
        assert f"sampled with steps {steps}, guidance 2.0" in reports[steps]["notes"]
    assert reports["1"]["metrics"]["fld"] != reports["3"]["metrics"]["fld"]
    r = zoo("eval", "flow-mnist", "-n", "20", "--direction", "a2b")
    assert r.code == 2 and "diffusion does not take the sample option 'direction'" in r.err


def test_publishing_takes_the_recipes_sampling_defaults_and_nothing_else():
    """The number of steps is chosen from the curve measured after training: a published
    model takes it from its recipe, but a setting training reads must be the run's own."""
    from dataclasses import replace

    from zoo.evaluation.publish import recipe_defaults

    info = api.load("ddpm-mnist").info
    recipe = recipe_defaults(info).config
    stale = replace(info, config={**info.config, "sample_steps": 7})
    assert recipe_defaults(stale).config == recipe and recipe["sample_steps"] != 7
    other = replace(info, config={**info.config, "lr": 0.5})
    with pytest.raises(SystemExit, match=r"other settings than the recipe of ddpm-mnist \(lr\)"):
        recipe_defaults(other)


# -- latent tools: x_T is the latent of a deterministic sampler ----------------------------


def _smooth(x, t, labels):
    """A smooth stand-in velocity that depends on x and t but on no data."""
    return ((0.4 + 0.3 * t[:, None, None, None]) * np.tanh(x) - 0.2).astype(np.float32)


@pytest.mark.parametrize(
    ("objective", "sampler", "steps", "refine", "atol"),
    [("velocity", "euler", 5, 3, 1e-3), ("velocity", "heun", 4, 3, 1e-3),
     ("epsilon", "ddim", 20, 8, 1e-4), ("velocity", "euler", 5, 0, None)],
)  # fmt: skip
def test_inversion_undoes_the_sampler(objective, sampler, steps, refine, atol):
    """Each step's input is found by fixed-point iteration, so with enough refinements the
    sampler maps the inverted x_T back onto the image (noise prediction: the exact predictor
    of Gaussian data, whose x_0 estimates the sampler need not clip); without any (the
    classic inversion) a few large steps land measurably off."""
    from zoo.contract.diffusion import denoise, invert

    if objective == "velocity":
        d = Diffusion(objective=objective, schedule="flow", sampler=sampler, steps=steps)
        net = _smooth
    else:
        d = Diffusion(timesteps=1000, steps=steps)
        net = _gaussian_eps(d, 0.1, 0.3)
    images = np.random.default_rng(0).uniform(-0.5, 0.5, (3, 1, 4, 4)).astype(np.float32)
    back = denoise(d, net, invert(d, net, images, refine=refine))
    if atol is None:
        assert np.abs(back - images).max() > 1e-2
    else:
        np.testing.assert_allclose(back, images, atol=atol)


def test_a_sampler_that_adds_noise_has_no_latent():
    from zoo.contract.diffusion import deterministic, invert

    flow = Diffusion(objective="velocity", schedule="flow", sampler="euler")
    assert deterministic(Diffusion()) and deterministic(flow)
    for noisy in (Diffusion(sampler="ddpm"), Diffusion(eta=0.5)):
        assert not deterministic(noisy)
        with pytest.raises(UsageError, match="adds noise"):
            invert(noisy, _smooth, np.zeros((1, 1, 4, 4), np.float32))


def test_interpolation_of_a_diffusion_model_starts_at_the_seeds_image(zoo, zoo_no_torch, tmp_path):
    """`zoo sample flow-mnist --interpolate K --seed A,B`: the ends are `-n 1 --seed A` and
    B's images, and onnxruntime (no torch, from the cached export) draws torch's path."""
    one = api.sample("flow-mnist", 1, seed=1, labels=[3], runtime="torch").images
    path = api.interpolate("flow-mnist", 4, seeds=(1, 2), labels=[3, 8], runtime="torch")
    assert path.images.shape == (4, 1, 28, 28) and path.labels.tolist() == [3, 3, 8, 8]
    torch.testing.assert_close(path.images[0], one[0], atol=0, rtol=0)
    api.onnx_files(api.load("flow-mnist"))  # the export, cached once
    r = zoo_no_torch("sample", "flow-mnist", "--interpolate", "4", "--seed", "1,2", "--label",
                     "3,8", "--out", "free.npz", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "CPUExecutionProvider" in r.stdout
    pixels = path.images.add(1).mul(127.5).round().clamp(0, 255).numpy().astype(int)
    assert np.abs(np.load("free.npz")["images"].astype(int) - pixels).max() <= 1
    r = zoo("sample", "ddpm-mnist", "--truncation", "1.0", "-n", "2", "--out", "t.png")
    assert r.code == 0, r.err


@pytest.fixture(scope="module")
def digits():
    from zoo.contract.imagesets import to_float
    from zoo.data.sources import load_dataset

    held_out = load_dataset("mnist-5k", image_size=28).test
    return to_float(held_out.images[:6]), held_out.labels[:6]


def test_inverting_held_out_digits_finds_latents_and_classes(digits):
    """flow-mnist (5 Euler steps, refined) reconstructs held-out digits to a mean pixel error
    of about 0.008 and names their classes by its own denoising; ddpm-mnist (50 DDIM steps,
    the classic inversion) to about 0.035."""
    images, labels = digits
    found = api.invert("flow-mnist", images)
    assert found.labels.tolist() == labels.tolist()
    assert (found.images - images).abs().mean() < 0.02
    rows = {"z": found.z.numpy(), "labels": found.labels.numpy()}
    again = api.sample_latents("flow-mnist", LatentQuery(rows=rows), runtime="torch")
    torch.testing.assert_close(again.images, found.images, atol=1e-5, rtol=0)
    found = api.invert("ddpm-mnist", images[:3])
    assert found.labels is None and (found.images - images[:3]).abs().mean() < 0.06


def test_zoo_invert_says_a_diffusion_model_has_no_search(zoo, digits):
    from zoo.data.images import save_samples

    save_samples(Path("d.png"), digits[0][:1], 1)
    r = zoo("invert", "flow-mnist", "--input", "d.png", "--out", "z.npz", "--restarts", "2")
    assert r.code == 2 and "drop --restarts" in r.err
    r = zoo("invert", "flow-mnist", "--input", "d.png", "--out", "z.npz")
    assert r.code == 0, r.err
    r = zoo("sample", "flow-mnist", "--latents", "z.npz", "--out", "back.png")
    assert r.code == 0, r.err
