"""Sampling an ONNX file without torch (zoo/runtime/onnx_sampling.py,
zoo/base/torch_random.py): the draws torch makes, and `zoo sample FILE.onnx` giving the torch
path's images without importing it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo import api
from zoo.base.torch_random import TorchGenerator


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**40 + 7])
@pytest.mark.parametrize("shape", [(64, 100), (1, 100), (3, 20), (16,), (17,), (5, 7, 3)])
def test_normals_are_torchs(seed, shape):
    expected = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    np.testing.assert_allclose(TorchGenerator(seed).randn(*shape), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize("n", [1, 9, 64])
def test_labels_after_normals_are_torchs(n):
    g = torch.Generator().manual_seed(5)
    z, labels = torch.randn(n, 20, generator=g), torch.randint(10, (n,), generator=g)
    ours = TorchGenerator(5)
    np.testing.assert_allclose(ours.randn(n, 20), z.numpy(), atol=1e-6)
    assert ours.randint(10, n).tolist() == labels.tolist()


def test_fewer_than_16_normals_are_refused():
    # torch draws those by another method, which is not mirrored: callers fall back to torch
    with pytest.raises(ValueError, match="16"):
        TorchGenerator(0).randn(3, 5)


@pytest.fixture(scope="module")
def cgan_onnx(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cgan")
    overrides = {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8, "log_every": 1}
    api.train("cgan", data="digits", out=tmp / "run", steps=1, batch_size=4,
              overrides=overrides, progress=False)  # fmt: skip
    return api.export(tmp / "run", "onnx", tmp / "cgan.onnx")[0]


@pytest.mark.parametrize("labels", [[], ["3,7"]])
def test_zoo_sample_onnx_draws_what_torch_draws_without_importing_it(
    cgan_onnx, tmp_path, labels, zoo_no_torch
):
    label_args = [a for value in labels for a in ("--label", value)]
    r = zoo_no_torch(
        "sample", str(cgan_onnx), "-n", "6", "--seed", "4", "--out", "free.npz", *label_args,
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "CPUExecutionProvider" in r.stdout
    free = np.load(tmp_path / "free.npz")
    given = [3] * 6 + [7] * 6 if labels else None
    expected = api.sample(cgan_onnx, len(given or range(6)), seed=4, labels=given, runtime="onnx")
    reference = expected.images.add(1).mul(127.5).round().clamp(0, 255).numpy()
    assert free["images"].shape == reference.shape
    assert np.abs(free["images"].astype(int) - reference.astype(int)).max() <= 1
    if labels:
        assert free["labels"].tolist() == given
    else:  # labels drawn after the latent vectors, as torch draws them, are not written
        assert "labels" not in free


def test_a_run_sampled_in_onnxruntime_again_needs_no_torch(cgan_onnx, tmp_path, zoo_no_torch):
    run = cgan_onnx.parent / "run"
    r = zoo_no_torch("sample", str(run), "--runtime", "onnx", "--out", "a.png", cwd=tmp_path)
    assert "torch imported" in r.stderr  # the first time exports the run's ONNX graph
    r = zoo_no_torch("sample", str(run), "--runtime", "onnx", "--out", "b.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "exported to" in r.stdout and "checkpoints" in r.stdout
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_zoo_sample_name_exports_once_then_skips_torch(tmp_path, zoo_no_torch):
    """The default runtime samples a pretrained model's prior graph in onnxruntime on the
    CPU: the first call exports it into the cache, later calls need no torch, and all give
    the images the torch runtime gives."""
    r = zoo_no_torch("sample", "gan-mnist", "-n", "9", "--out", "a.png", cwd=tmp_path)
    assert "torch imported" in r.stderr  # the first call loads the weights and exports them
    r = zoo_no_torch("sample", "gan-mnist", "-n", "9", "--out", "b.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "CPUExecutionProvider" in r.stdout and "exported to" in r.stdout
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    via_torch = api.sample("gan-mnist", 9, runtime="torch").images
    png = np.asarray(Image.open(tmp_path / "b.png").convert("L"), dtype=int)
    first = png[2:30, 2:30]  # torchvision's grid: 2-pixel padding around each 28x28 image
    expected = via_torch[0, 0].add(1).mul(127.5).round().clamp(0, 255).numpy().astype(int)
    assert np.abs(first - expected).max() <= 1


def test_families_without_a_prior_graph_still_sample_through_torch(tmp_path, zoo_no_torch):
    # a CycleGAN translates images: its ONNX files need inputs, so the torch path serves them
    api.train("cyclegan", data="unpaired:digits,digits", out=tmp_path / "run", steps=1,
              batch_size=2, overrides={"image_size": 16, "ngf": 4, "ndf": 4, "blocks": 1},
              progress=False)  # fmt: skip
    onnx = api.export(tmp_path / "run", "onnx", tmp_path / "cg.onnx")[0]
    r = zoo_no_torch("sample", str(onnx), "-n", "2", "--out", "t.png", cwd=tmp_path)
    assert r.returncode != 0 and "torch imported" in r.stderr
    assert (tmp_path / "t.png").is_file()
