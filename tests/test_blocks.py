"""The public building blocks (zoo/contract/blocks.py) and the GAN families' options built on
them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo.api as z
from zoo.contract.blocks import (
    HINGE,
    LEAST_SQUARES,
    NON_SATURATING,
    OBJECTIVES,
    Objective,
    adversarial_step,
    hinge_discriminator_loss,
    least_squares_loss,
    non_saturating_loss,
)
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import Batch, ModelInfo, Noise
from zoo.errors import UsageError
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


def _steps_taken(model) -> dict[str, int]:
    counts = dict.fromkeys(model.optimizers, 0)
    for name, opt in model.optimizers.items():
        opt.register_step_post_hook(
            lambda *_, name=name: counts.__setitem__(name, counts[name] + 1)
        )
    return counts


@pytest.mark.parametrize("d_steps", [1, 3])
def test_several_discriminator_updates_per_generator_update(d_steps):
    """SNGAN's n_dis: the trainer hands the step d_steps batches, D takes one update on each
    (against fakes of its own noise), G one."""
    m = _gan(d_steps=d_steps)
    assert m.batches_per_step(0) == d_steps
    counts = _steps_taken(m)
    seen = []
    m.discriminator.register_forward_hook(lambda mod, args, out: seen.append(len(args[0])))
    m.train_step(Batch(torch.rand(4 * d_steps, 1, 8, 8) * 2 - 1), step=0)
    assert counts == {"generator": 1, "discriminator": d_steps}
    assert seen == [4] * (2 * d_steps + 1)  # reals and fakes per D update, fakes for G


def test_one_discriminator_update_is_the_step_it_always_was():
    """d_steps = 1 changes nothing: the shipped recipes train exactly as before."""
    batch = torch.rand(8, 1, 8, 8) * 2 - 1
    a, b = _gan(), _gan(d_steps=1)
    out_a = a.train_step(Batch(batch, noise=Noise(0)), step=0)
    out_b = b.train_step(Batch(batch, noise=Noise(0)), step=0)
    assert out_a == out_b
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_the_adversarial_step_needs_no_augment_or_real_target():
    """A third-party family gets the defaults: no augmentation, real target 1."""

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = nn.Linear(2, 3), nn.Linear(3, 1)
            self.config = {}
            self.optimizers = {
                "generator": torch.optim.SGD(self.generator.parameters(), 0.1),
                "discriminator": torch.optim.SGD(self.discriminator.parameters(), 0.1),
            }

        def batches_per_step(self, step):
            return 1

    out = adversarial_step(Plain(), 0, torch.randn(5, 3), (torch.randn(5, 2),))
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_spectral_norm_bounds_every_layer_of_a_dcgan_discriminator():
    torch.manual_seed(0)
    info = ModelInfo("dcgan", {"ngf": 8, "ndf": 8, "nz": 4, "d_norm": "spectral"}, ImageSpec(1, 16))
    m = z.build(info)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.discriminator.modules())
    convs = [x for x in m.discriminator.modules() if isinstance(x, nn.Conv2d)]
    assert convs and all(nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    m.discriminator.train()
    for _ in range(30):  # the power iteration converges as D runs
        m.discriminator(torch.randn(4, 1, 16, 16))
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)
    batch_norm = z.build(ModelInfo("dcgan", {"ngf": 8, "ndf": 8, "nz": 4}, ImageSpec(1, 16)))
    assert any(isinstance(x, nn.BatchNorm2d) for x in batch_norm.discriminator.modules())
