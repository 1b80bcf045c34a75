"""Vanilla GAN (Goodfellow et al. 2014), in the MLP form of the seed tutorials.

Generator: z -> 256 -> 512 -> 1024 -> image, LeakyReLU(0.2), Tanh output in [-1, 1].
Discriminator: image -> 512 -> 256 -> logit, LeakyReLU(0.2).
Loss: the non-saturating generator loss (maximise log D(G(z))) with BCEWithLogits, which is
numerically safer than Sigmoid + BCELoss and has the same optimum. Adam 2e-4, betas
(0.5, 0.999). The train step is `zoo.contract.blocks.adversarial_step`, shared by dcgan, cgan and
the LSGAN example.

Options beyond the paper, off by default: ``g_norm = "batch"`` puts BatchNorm after G's hidden
layers but the first (as DCGAN does), ``d_dropout`` drops D's hidden units (the paper's D
used dropout, with maxout units). The gan-mnist recipe uses both (with dropout 0.3): FLD 16.2
at 15,000 steps, against 71.3 without them, where D memorised the 4,000 training digits and
the samples got worse after 16,000 steps.

Shared by the GAN-objective families (DCGAN, cGAN, the LSGAN example): ``loss`` picks the
objective from `zoo.contract.blocks.OBJECTIVES` (non-saturating, least squares, hinge),
``ema_decay`` samples from an exponential moving average of G's weights (zoo/contract/latent.py; the
GAN recipes use 0.999), ``augment`` applies DiffAugment to everything D sees
(zoo/contract/augment.py; on dcgan-mnist it slowed convergence: FLD 134 vs 102 after 1,500 steps,
with EMA, so no recipe uses it), ``d_lr`` gives D its own learning rate (TTUR, Heusel et al. 2017)
and ``real_target`` below 1 is one-sided label smoothing (Salimans et al. 2016).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from zoo.contract.augment import parse_policy
from zoo.contract.blocks import OBJECTIVES, adam, adversarial_step
from zoo.contract.latent import LatentModel
from zoo.contract.model import Batch


def _mlp(sizes: list[int], batch_norm: bool = False, dropout: float = 0.0) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b, bias=not batch_norm or i == 0))
        if batch_norm and i > 0:  # as DCGAN: not on the layer that reads z
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    def __init__(self, nz: int, hidden: list[int], shape: tuple[int, int, int], norm: str = "none"):
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(
            *_mlp([nz, *hidden], batch_norm=norm == "batch"),
            nn.Linear(hidden[-1], math.prod(shape)),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class Discriminator(nn.Module):
    def __init__(self, hidden: list[int], shape: tuple[int, int, int], dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            *_mlp([math.prod(shape), *hidden], dropout=dropout),
            nn.Linear(hidden[-1], 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class GAN(LatentModel):
    """Settings: GANConfig in zoo/plugins/__init__.py (the objective's in GANObjective)."""

    def __init__(self, config, spec):
        super().__init__(config, spec)
        self.generator, self.discriminator = self.networks()
        if config["ema_decay"] > 0:
            self.enable_ema()
        self.augment = parse_policy(config["augment"])

    def networks(self) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator); families that keep this objective swap the networks."""
        c, spec = self.config, self.spec
        shape = (spec.channels, spec.size, spec.size)
        return (
            Generator(c["nz"], c["g_hidden"], shape, c["g_norm"]),
            Discriminator(c["d_hidden"], shape, c["d_dropout"]),
        )

    def configure_optimizers(self):
        c = self.config
        betas = (c["beta1"], c["beta2"])
        return {
            "generator": adam(self.generator.parameters(), c["lr"], betas),
            "discriminator": adam(self.discriminator.parameters(), c["d_lr"] or c["lr"], betas),
        }

    def batches_per_step(self, step: int) -> int:
        return self.config["d_steps"]

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real = batch.images
        z = batch.noise.randn(len(real), self.config["nz"], device=real.device)
        return adversarial_step(self, step, real, (z,), OBJECTIVES[self.config["loss"]])
