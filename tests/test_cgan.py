"""cGAN: the label reaches both networks, and a tiny run samples the same in PyTorch and ONNX."""

from __future__ import annotations

import json

import pytest
import torch

import zoo.api as z
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import Batch, ModelInfo
from zoo.errors import UsageError
from zoo.plugins.cgan import CGAN

TINY = {"nz": 8, "embed_dim": 4, "ngf": 4, "ndf": 4}


def _model() -> CGAN:
    torch.manual_seed(0)
    return z.build(ModelInfo("cgan", TINY, ImageSpec(channels=1, size=16, num_classes=10)))


def test_label_changes_the_image_for_the_same_noise():
    g = _model().generator.eval()
    z_ = torch.randn(1, TINY["nz"]).expand(3, -1)
    images = g(z_, torch.tensor([0, 3, 9]))
    assert images.shape == (3, 1, 16, 16)
    assert not torch.allclose(images[0], images[1], atol=1e-4)
    assert not torch.allclose(images[1], images[2], atol=1e-4)


def test_gradient_reaches_only_the_used_label_embeddings():
    model = _model()
    labels = torch.tensor([2, 5])
    fake = model.generator(torch.randn(2, TINY["nz"]), labels)
    model.discriminator(fake, labels).sum().backward()
    for net in (model.generator, model.discriminator):
        rows = net.embed.weight.grad.abs().sum(dim=1)
        assert (rows[labels] > 0).all()
        assert rows[[0, 1, 3, 4, 6, 7, 8, 9]].eq(0).all()


def test_train_step_uses_the_batch_labels():
    model = _model()
    model.optimizers = model.configure_optimizers()
    images = torch.rand(8, 1, 16, 16) * 2 - 1
    before = model.discriminator.embed.weight.detach().clone()
    losses = model.train_step(Batch(images, torch.full((8,), 4)), 0)
    assert set(losses) == {"d_loss", "g_loss", "d_real", "d_fake"}
    changed = (model.discriminator.embed.weight.detach() != before).any(dim=1)
    assert changed.tolist() == [i == 4 for i in range(10)]


def _images(result):
    return getattr(result, "images", result)


def test_tiny_run_samples_the_same_in_torch_and_onnx(tmp_path):
    run = tmp_path / "run"
    over = {"image_size": 16, "batch_size": 8, "log_every": 2, "sample_every": 4}
    z.train("cgan", data="digits", out=run, steps=4, overrides={**over, **TINY}, progress=False)
    assert "d_loss" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])

    labels = [7, 7, 0, 9, 3]
    torch_images = _images(z.sample(run, n=5, seed=1, labels=labels, device="cpu"))
    assert torch_images.shape == (5, 1, 16, 16)
    onnx_file = tmp_path / "cgan.onnx"
    z.export(run, "onnx", onnx_file)
    onnx_images = _images(z.sample(onnx_file, n=5, seed=1, labels=labels, runtime="onnx"))
    torch.testing.assert_close(onnx_images, torch_images, atol=1e-4, rtol=0)
    # same noise, another label: the ONNX graph really takes the label as an input
    other = _images(z.sample(onnx_file, n=5, seed=1, labels=[1] * 5, runtime="onnx"))
    assert not torch.allclose(other, onnx_images, atol=1e-3)

    with pytest.raises(UsageError, match="out of range"):
        z.sample(run, n=1, labels=[10], device="cpu")
    assert z.export(run, "safetensors", tmp_path / "cgan.safetensors")
