"""The EMA of generator weights that every latent-model family can keep (zoo/contract/latent.py)."""

from __future__ import annotations

import pytest
import torch

import zoo.api as z
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import Batch, ModelInfo
from zoo.plugins.cgan import CGAN
from zoo.plugins.dcgan import DCGAN
from zoo.plugins.gan import GAN


def _model(cls, **config):
    torch.manual_seed(0)
    small = {"nz": 8, "ngf": 4, "ndf": 4} if cls is not GAN else {"nz": 8, "g_hidden": [16]}
    spec = ImageSpec(1, 16, num_classes=10 if cls is CGAN else 0)
    m = z.build(ModelInfo(cls.__name__.lower(), {**small, **config}, spec))
    m.optimizers = m.configure_optimizers()
    return m


def _batch(m):
    labels = torch.randint(10, (8,)) if m.conditional else None
    return Batch(torch.rand(8, 1, 16, 16) * 2 - 1, labels)


@pytest.mark.parametrize("cls", [GAN, DCGAN, CGAN])
def test_ema_off_by_default_samples_the_raw_generator(cls):
    m = _model(cls)
    assert not hasattr(m, "generator_ema")
    assert all(k.startswith("generator.") for k in m.inference_state())


@pytest.mark.parametrize("cls", [GAN, DCGAN, CGAN])
def test_ema_follows_the_generator_at_the_ramped_decay(cls):
    m = _model(cls, ema_decay=0.999)
    before = {k: v.clone() for k, v in m.generator_ema.state_dict().items()}
    m.train_step(_batch(m), step=0)  # decay min(0.999, 1/10): the average moves 90% of the way
    raw = m.generator.state_dict()
    for key, value in m.generator_ema.named_parameters():
        torch.testing.assert_close(value, 0.1 * before[key] + 0.9 * raw[key])
    assert all(k.startswith("generator_ema.") for k in m.inference_state())
    assert m.graphs()["generator"].module is m.generator_ema


def test_ema_keeps_its_own_batchnorm_statistics():
    m = _model(DCGAN, ema_decay=0.999)
    for step in range(3):
        m.train_step(_batch(m), step)
    ema, raw = m.generator_ema.state_dict(), m.generator.state_dict()
    stats = [k for k in ema if k.endswith("running_mean")]
    tracked = [k.replace("running_mean", "num_batches_tracked") for k in stats]
    assert stats and all(int(ema[k]) == 3 for k in tracked)
    assert any(not torch.equal(ema[k], raw[k]) for k in stats)
