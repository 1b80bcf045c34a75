"""Least-squares GAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks").

The discriminator outputs an unbounded score and both players minimise squared errors
(the paper's eq. 2 with a=0 for fakes, b=1 for reals and c=1 as the generator's target):

  D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]        G: 1/2 E[(D(G(z)) - 1)^2]

which penalises fakes far from the decision boundary even when they are classified
correctly, giving the generator gradients where the sigmoid cross-entropy saturates.

Networks: DCGAN-style (Radford et al. 2015) for any power-of-two size >= 8: a ConvTranspose
stack with BatchNorm + ReLU and Tanh output, a Conv stack with LeakyReLU(0.2) and a linear
score. Departure: the paper's LSUN nets are larger (and it uses lr 1e-3 for some runs); here
the DCGAN recipe applies, Adam 2e-4 with betas (0.5, 0.999), so results compare with `dcgan`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zoo.errors import UsageError
from zoo.latent import LatentModel
from zoo.model import Batch


def _blocks(size: int) -> int:
    blocks = int(math.log2(size)) - 2
    if size < 8 or 2 ** (blocks + 2) != size:
        raise UsageError(
            f"LSGAN needs a power-of-two image size >= 8 (got {size}); pass --set image_size=32"
        )
    return blocks


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, channels: int, size: int):
        super().__init__()
        n = _blocks(size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, ndf: int, channels: int, size: int):
        super().__init__()
        n = _blocks(size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))  # a score, not a probability
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class LSGAN(LatentModel):
    defaults = {"nz": 100, "ngf": 64, "ndf": 64, "lr": 2e-4, "beta1": 0.5, "beta2": 0.999}
    train_defaults = {"batch_size": 64, "image_size": 32}

    def __init__(self, config, spec):
        super().__init__(config, spec)
        self.generator = Generator(config["nz"], config["ngf"], spec.channels, spec.size)
        self.discriminator = Discriminator(config["ndf"], spec.channels, spec.size)
        self.apply(_init)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
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
        d, opt = self.discriminator, self.optimizers

        real_score, fake_score = d(real), d(fake.detach())
        d_loss = 0.5 * ((real_score - 1) ** 2).mean() + 0.5 * (fake_score**2).mean()
        opt["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        opt["discriminator"].step()

        g_loss = 0.5 * ((d(fake) - 1) ** 2).mean()
        opt["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        opt["generator"].step()
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": real_score.mean().detach(),
            "d_fake": fake_score.mean().detach(),
        }
