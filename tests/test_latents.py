"""The latent tools (zoo/runtime/latents.py, zoo/runtime/inversion.py): truncation,
interpolation, walks, latents files and inversion, from the API, the CLI and without torch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo.api as api
from zoo.base.torch_random import TorchGenerator
from zoo.contract.model import TorchDraws
from zoo.errors import UsageError
from zoo.runtime.latents import (
    LatentQuery,
    Prior,
    draw,
    feed_for,
    interpolation,
    normal,
    read_latents,
    slerp,
    walk,
    write_latents,
)

DCGAN = Prior("generator", 100)
CGAN = Prior("generator", 100, 10)


# -- draws -------------------------------------------------------------------------------------


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_truncated_draws_stay_inside_and_are_a_truncated_normal(psi):
    """Redrawing (not scaling): the values never pass psi, and their spread is the truncated
    normal's, which a rescaled normal's would not match."""
    z = normal(TorchGenerator(0), 400, 100, psi)
    assert np.abs(z).max() <= psi
    pdf = math.exp(-(psi**2) / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(psi / math.sqrt(2))
    variance = 1 - 2 * psi * pdf / mass  # of N(0, 1) truncated to [-psi, psi]
    assert z.var() == pytest.approx(variance, rel=0.02)
    scaled = normal(TorchGenerator(0), 400, 100)
    scaled = scaled * psi / np.abs(scaled).max()
    assert abs(scaled.var() - variance) > 0.05 * variance


def test_truncated_draws_are_the_same_on_both_runtimes():
    for prior, labels in ((DCGAN, None), (CGAN, None), (CGAN, [3] * 16)):
        by_numpy = draw(prior, TorchGenerator(7), 16, labels, truncation=0.7)
        by_torch = draw(prior, TorchDraws(7), 16, labels, truncation=0.7)
        np.testing.assert_allclose(by_numpy["z"], by_torch["z"], atol=1e-5)
        if prior.conditional:
            assert np.array_equal(by_numpy["labels"], by_torch["labels"])


def test_a_truncation_out_of_range_is_a_usage_error():
    for psi in (0.0, -1.0, 0.01, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="--truncation"):
            normal(TorchGenerator(0), 4, 100, psi)


def test_slerp_keeps_the_norm_of_gaussian_latents():
    """A straight line between two draws dips to about 1/sqrt(2) of their norm halfway, where
    a generator has seen no latents; the great circle keeps the norm all the way."""
    a, b = normal(TorchGenerator(1), 1, 512), normal(TorchGenerator(2), 1, 512)
    path = slerp(a, b, 9)
    norms = np.linalg.norm(path, axis=1)
    ends = np.linalg.norm(a), np.linalg.norm(b)
    assert np.array_equal(path[0], a[0]) and np.array_equal(path[-1], b[0])
    assert norms.min() >= min(ends) * 0.999 and norms.max() <= max(ends) * 1.001
    straight = np.linalg.norm((a + b) / 2)
    assert straight < 0.8 * min(ends)


def test_a_walk_is_closed_smooth_and_stays_on_the_prior():
    feed = walk(DCGAN, TorchGenerator(3), 64)
    z = feed["z"]
    start = draw(DCGAN, TorchGenerator(3), 1)["z"]
    assert np.array_equal(z[0], start[0])  # the -n 1 image of the same seed
    steps = np.linalg.norm(np.diff(np.vstack([z, z[:1]]), axis=0), axis=1)
    assert steps.max() < 2 * steps.min()  # even steps, the last one back to the start
    assert np.abs(np.linalg.norm(z, axis=1) / math.sqrt(100) - 1).max() < 0.3


def test_conditional_paths_keep_each_ends_class():
    ends = [draw(CGAN, TorchGenerator(s), 1, [c]) for s, c in ((1, 3), (2, 8))]
    feed = interpolation(ends, 6)
    assert feed["labels"].tolist() == [3, 3, 3, 8, 8, 8]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (LatentQuery(interpolate=4), "give --seed A,B"),
        (LatentQuery(seeds=(1, 2)), "names the ends of --interpolate"),
        (LatentQuery(interpolate=4, walk=4, seeds=(1, 2)), "give one"),
        (LatentQuery(walk=1), "between 2 and"),
        (LatentQuery(walk=4, labels=[1, 2]), "one --label"),
        (LatentQuery(latents=Path("x.npz"), truncation=0.5), "drop --walk and --truncation"),
    ],
)
def test_queries_that_mean_nothing_are_refused(query, message):
    with pytest.raises(UsageError, match=message):
        query.check()


def test_a_latents_file_round_trips_and_hostile_ones_are_refused(tmp_path):
    path = tmp_path / "ok.npz"
    write_latents(path, np.ones((3, 100), np.float32), np.array([1, 2, 3]))
    feed = read_latents(path, CGAN)
    assert feed["z"].shape == (3, 100) and feed["labels"].tolist() == [1, 2, 3]
    bad = {
        "wide.npz": ({"z": np.ones((2, 99))}, "rows of 100"),
        "nan.npz": ({"z": np.full((2, 100), np.nan)}, "finite"),
        "nolabels.npz": ({"z": np.ones((2, 100))}, "needs 'labels'"),
        "class.npz": ({"z": np.ones((2, 100)), "labels": np.array([0, 10])}, "classes 0..9"),
        "objects.npz": ({"z": np.array([{"a": 1}] * 2, dtype=object)}, "more than zoo reads"),
        "noz.npz": ({"w": np.ones(3)}, "no 'z' array"),
    }
    for name, (arrays, message) in bad.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(UsageError, match=message):
            read_latents(tmp_path / name, CGAN)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(UsageError, match="not a readable"):
        read_latents(tmp_path / "text.npz", CGAN)


# -- through a model ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dcgan-mnist", "cgan-mnist"])
def test_interpolation_ends_are_the_seeds_images_in_torch(name):
    loaded = api.load(name)
    path = api.interpolate(name, 5, seeds=(11, 12), loaded=loaded, runtime="torch")
    for end, seed in ((0, 11), (-1, 12)):
        alone = api.sample(name, 1, seed=seed, loaded=loaded, runtime="torch")
        assert torch.equal(path.images[end], alone.images[0])
    assert path.nrow == 5 and len(path.images) == 5


def test_interpolation_ends_are_the_seeds_images_without_torch(tmp_path, zoo_no_torch):
    """The torch-free path (the export cached by a first call) makes the same ends, and the
    same images as the torch path within float rounding."""
    warm = zoo_no_torch("sample", "dcgan-mnist", "--out", "warm.png", cwd=tmp_path)
    assert "torch imported" in warm.stderr  # the first call exports the weights
    for args, out in (
        (["--interpolate", "5", "--seed", "11,12"], "path.npy"),
        (["-n", "1", "--seed", "11"], "a.npy"),
        (["-n", "1", "--seed", "12"], "b.npy"),
        (["--walk", "6", "--seed", "11"], "walk.npy"),
        (["-n", "16", "--truncation", "0.6"], "trunc.npy"),
    ):
        r = zoo_no_torch("sample", "dcgan-mnist", *args, "--out", out, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "CPUExecutionProvider" in r.stdout
    path = np.load(tmp_path / "path.npy")
    assert np.array_equal(path[0], np.load(tmp_path / "a.npy")[0])
    assert np.array_equal(path[-1], np.load(tmp_path / "b.npy")[0])
    assert np.array_equal(np.load(tmp_path / "walk.npy")[0], path[0])
    via_torch = api.interpolate("dcgan-mnist", 5, seeds=(11, 12), runtime="torch").images
    expected = via_torch.add(1).mul(127.5).round().clamp(0, 255).numpy()
    assert np.abs(path.astype(int) - expected.astype(int)).max() <= 1
    truncated = api.sample("dcgan-mnist", 16, truncation=0.6, runtime="torch").images
    expected = truncated.add(1).mul(127.5).round().clamp(0, 255).numpy()
    assert np.abs(np.load(tmp_path / "trunc.npy").astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animations_hold_one_frame_per_step(zoo, suffix):
    r = zoo("sample", "dcgan-mnist", "--walk", "7", "--out", f"walk{suffix}")
    assert r.code == 0, r.err
    with Image.open(f"walk{suffix}") as animation:
        assert animation.n_frames == 7 and min(animation.size) >= 112
    for args in (["-n", "4"], ["--truncation", "0.7"]):  # no path, so no frames
        r = zoo("sample", "dcgan-mnist", *args, "--out", f"grid{suffix}")
        assert r.code == 2 and "an animation shows --interpolate K or --walk K" in r.err


def test_inversion_finds_a_generators_own_images():
    """Images the model can make are found again: a fraction of the random floor's error in
    a fixed number of steps, and the renders of the latents found are those images."""
    loaded = api.load("dcgan-mnist")
    targets = api.sample("dcgan-mnist", 4, seed=5, loaded=loaded, runtime="torch").images
    found = api.invert("dcgan-mnist", targets, steps=150, restarts=3, loaded=loaded)
    error = (found.images - targets).pow(2).mean().item()
    floor = (api.sample("dcgan-mnist", 4, seed=6, loaded=loaded).images - targets).pow(2)
    assert error < 0.05 and error < floor.mean().item() / 8
    feed = {"z": found.z.numpy()}
    rendered = api.sample_latents("dcgan-mnist", LatentQuery(rows=feed), loaded=loaded,
                                  runtime="torch")  # fmt: skip
    torch.testing.assert_close(rendered.images, found.images, atol=1e-5, rtol=0)


def test_the_vae_inverts_from_its_encoder():
    loaded = api.load("vae-mnist")
    targets = api.sample("vae-mnist", 3, seed=2, loaded=loaded, runtime="torch").images
    encoded = api.invert("vae-mnist", targets, steps=0, restarts=1, loaded=loaded)
    refined = api.invert("vae-mnist", targets, steps=60, restarts=1, loaded=loaded)
    assert refined.loss.mean() <= encoded.loss.mean()
    with pytest.raises(UsageError, match="--steps 0 needs a family that encodes"):
        api.invert("dcgan-mnist", targets, steps=0)


def test_zoo_invert_then_sample_its_latents_and_morph_two_digits(zoo):
    loaded = api.load("cgan-mnist")
    targets = api.sample("cgan-mnist", 2, seed=9, labels=[1, 7], loaded=loaded).images
    for i, image in enumerate(targets):
        pixels = image[0].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(f"d{i}.png")
    r = zoo("invert", "cgan-mnist", "--input", "d0.png", "--input", "d1.png", "--steps", "40",
            "--restarts", "1", "--out", "found.npz", "--preview", "pairs.png")  # fmt: skip
    assert r.code == 0, r.err
    saved = np.load("found.npz")
    assert saved["z"].shape == (2, 100) and saved["labels"].tolist() == [1, 7]
    assert Image.open("pairs.png").size == (62, 62)  # rows of input, reconstruction
    r = zoo("sample", "cgan-mnist", "--latents", "found.npz", "--interpolate", "6",
            "--out", "morph.npz")  # fmt: skip
    assert r.code == 0, r.err
    morph = np.load("morph.npz")
    assert morph["images"].shape == (6, 1, 28, 28) and morph["labels"].tolist() == [1] * 3 + [7] * 3
    r = zoo("invert", "cgan-mnist", "--input", "d0.png", "--out", "found.png")
    assert r.code == 2 and "latents are written as a .npz file" in r.err


def test_a_family_without_a_prior_graph_says_so(zoo):
    r = zoo("sample", "cyclegan-digits", "--walk", "4", "--out", "w.png")
    assert r.code == 2 and "cyclegan declares no prior graph" in r.err
    assert "Traceback" not in r.err


def test_latent_tools_names_are_reserved_for_zoo():
    from zoo.registry.discovery import SAMPLE_RESERVED

    assert {"truncation", "interpolate", "walk", "latents"} <= SAMPLE_RESERVED


def test_eval_scores_truncated_samples(zoo):
    r = zoo("eval", "dcgan-mnist", "-n", "200", "--truncation", "0.5", "--no-anchors", "--json")
    assert r.code == 0, r.err
    assert "sampled with truncation 0.5" in r.out
    r = zoo("eval", "cyclegan-digits", "-n", "200", "--truncation", "0.5", "--no-anchors")
    assert r.code == 2 and "declares no prior graph" in r.err


def test_feed_for_refuses_what_numpy_cannot_mirror():
    tiny = Prior("generator", 4)
    with pytest.raises(ValueError, match="fewer than 16"):
        feed_for(tiny, LatentQuery(walk=3), TorchGenerator)
    feed, per_row = feed_for(tiny, LatentQuery(walk=3), TorchDraws)
    assert feed["z"].shape == (3, 4) and per_row == 3
