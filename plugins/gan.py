"""Vanilla GAN (Goodfellow et al. 2014), in the MLP form of the seed tutorials.

Generator: z -> 256 -> 512 -> 1024 -> image, LeakyReLU(0.2), Tanh output in [-1, 1].
Discriminator: image -> 512 -> 256 -> logit, LeakyReLU(0.2).
Loss: the non-saturating generator loss (maximise log D(G(z))) with BCEWithLogits, which is
numerically safer than Sigmoid + BCELoss and has the same optimum. Adam 2e-4, betas (0.5, 0.999).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from zoo.latent import LatentModel
from zoo.model import Batch


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True)]
    return layers


class Generator(nn.Module):
    def __init__(self, nz: int, hidden: list[int], shape: tuple[int, int, int]):
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(
            *_mlp([nz, *hidden]), nn.Linear(hidden[-1], math.prod(shape)), nn.Tanh()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class Discriminator(nn.Module):
    def __init__(self, hidden: list[int], shape: tuple[int, int, int]):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), *_mlp([math.prod(shape), *hidden]), nn.Linear(hidden[-1], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class GAN(LatentModel):
    defaults = {
        "nz": 100,
        "g_hidden": [256, 512, 1024],
        "d_hidden": [512, 256],
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
    }
    train_defaults = {"batch_size": 64}

    def __init__(self, config, spec):
        super().__init__(config, spec)
        self.generator, self.discriminator = self.networks()

    def networks(self) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator); families that keep this objective swap the networks."""
        c, spec = self.config, self.spec
        shape = (spec.channels, spec.size, spec.size)
        return Generator(c["nz"], c["g_hidden"], shape), Discriminator(c["d_hidden"], shape)

    def configure_optimizers(self):
        c = self.config
        betas = (c["beta1"], c["beta2"])
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), c["lr"], betas=betas),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), c["lr"], betas=betas
            ),
        }

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real = batch.images
        z = torch.randn(len(real), self.config["nz"], device=real.device)
        fake = self.generator(z)
        return non_saturating_step(self, real, fake)


def non_saturating_step(model, real, fake, d_args=()) -> dict[str, torch.Tensor]:
    """One discriminator then one generator update with the non-saturating loss.

    ``d_args`` are extra discriminator inputs (class labels for conditional models).
    """
    d, opt = model.discriminator, model.optimizers
    real_logit, fake_logit = d(real, *d_args), d(fake.detach(), *d_args)
    d_loss = F.binary_cross_entropy_with_logits(
        real_logit, torch.ones_like(real_logit)
    ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    opt["discriminator"].zero_grad(set_to_none=True)
    d_loss.backward()
    opt["discriminator"].step()

    gen_logit = d(fake, *d_args)
    g_loss = F.binary_cross_entropy_with_logits(gen_logit, torch.ones_like(gen_logit))
    opt["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    opt["generator"].step()
    return {
        "d_loss": d_loss.detach(),
        "g_loss": g_loss.detach(),
        "d_real": torch.sigmoid(real_logit).mean().detach(),
        "d_fake": torch.sigmoid(fake_logit).mean().detach(),
    }
