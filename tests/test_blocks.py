"""The public building blocks (zoo/blocks.py) and the GAN families' options built on them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo.api as z
from zoo.blocks import (
    HINGE,
    LEAST_SQUARES,
    NON_SATURATING,
    OBJECTIVES,
    Objective,
    hinge_discriminator_loss,
    least_squares_loss,
    non_saturating_loss,
)
from zoo.data import ImageSpec
from zoo.errors import UsageError
from zoo.model import Batch, ModelInfo
from zoo.plugins import GAN_LOSSES


def test_the_objectives_are_the_ones_the_loss_setting_names():
    assert tuple(OBJECTIVES) == GAN_LOSSES


def test_target_objectives_score_reals_fakes_and_the_generator():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d = NON_SATURATING.discriminator(real, fake, 0.9)
    assert d == non_saturating_loss(real, 0.9) + non_saturating_loss(fake, 0.0)
    assert NON_SATURATING.generator(fake) == non_saturating_loss(fake, 1.0)
    assert LEAST_SQUARES.discriminator(real, fake, 1.0) == pytest.approx(
        float(((real - 1) ** 2).mean() + (fake**2).mean())
    )
    assert torch.equal(NON_SATURATING.report(real), torch.sigmoid(real))
    assert torch.equal(LEAST_SQUARES.report(real), real)


def test_hinge_counts_only_scores_inside_the_margin():
    # reals above the margin and fakes below -1 cost nothing; the rest cost their distance
    real = torch.tensor([3.0, 0.5], requires_grad=True)
    fake = torch.tensor([-2.0, 0.0], requires_grad=True)
    loss = hinge_discriminator_loss(real, fake)
    assert loss.item() == pytest.approx((0.5 + 1.0) / 2)
    loss.backward()
    assert real.grad.tolist() == [0.0, -0.5] and fake.grad.tolist() == [0.0, 0.5]
    assert HINGE.generator(torch.tensor([1.0, 3.0])).item() == -2.0
    assert HINGE.discriminator(torch.tensor([0.5]), torch.tensor([-2.0]), 0.5).item() == 0.0


def test_an_objective_from_any_target_loss():
    half = Objective.from_targets(lambda s, t: 0.5 * least_squares_loss(s, t))
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([1.0])
    assert half.discriminator(real, fake, 1.0).item() == pytest.approx(0.25 + 0.5)
    assert half.generator(fake).item() == 0.0


def _gan(**config):
    torch.manual_seed(0)
    info = ModelInfo("gan", {"nz": 8, "g_hidden": [16, 32], "d_hidden": [32, 16], **config},
                     ImageSpec(1, 8))  # fmt: skip
    m = z.build(info)
    m.optimizers = m.configure_optimizers()
    return m


@pytest.mark.parametrize("loss", GAN_LOSSES)
def test_every_loss_trains_the_mlp_gan(loss):
    m = _gan(loss=loss)
    weights = [p for p in m.parameters() if p.dim() > 1]  # (the hinge's D bias may rest)
    before = [w.clone() for w in weights]
    out = m.train_step(Batch(torch.rand(8, 1, 8, 8) * 2 - 1), step=0)
    assert all(torch.isfinite(v) for v in out.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, weights, strict=True))
    if loss == "non-saturating":  # probabilities; the others log raw scores
        assert 0 < out["d_real"] < 1


def test_unknown_loss_names_the_choices():
    with pytest.raises(UsageError, match="non-saturating"):
        _gan(loss="wasserstein")


def test_batchnorm_in_g_and_dropout_in_d():
    m = _gan(g_norm="batch", d_dropout=0.3)
    g, d = list(m.generator.modules()), list(m.discriminator.modules())
    # BatchNorm after every hidden layer but the one that reads z, whose bias it makes redundant
    norms = [x for x in g if isinstance(x, nn.BatchNorm1d)]
    assert [n.num_features for n in norms] == [32]
    assert [x.bias is None for x in g if isinstance(x, nn.Linear)] == [False, True, False]
    assert [x.p for x in d if isinstance(x, nn.Dropout)] == [0.3, 0.3]
    m.discriminator.eval()  # dropout is off when D scores for evaluation
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(m.discriminator(x), m.discriminator(x))


def test_plain_mlp_gan_keeps_the_published_layer_names():
    # shipped gan-mnist weights name their layers by position: the options add none by default
    def linears(net: nn.Module) -> set[int]:
        return {int(key.split(".")[1]) for key in net.state_dict()}

    m = _gan()
    assert linears(m.generator) == {0, 2, 4}  # Linear, LeakyReLU, ..., Linear, Tanh
    assert linears(m.discriminator) == {1, 3, 5}  # Flatten, Linear, LeakyReLU, ..., Linear
