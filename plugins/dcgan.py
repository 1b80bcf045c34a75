"""DCGAN (Radford et al. 2015), following pytorch/examples dcgan/main.py.

Generator: ConvTranspose(nz -> ngf*2^k, 4, 1, 0) to 4x4, then ConvTranspose(4, 2, 1) blocks
halving the channels and doubling the size up to the image; BatchNorm + ReLU on hidden layers,
Tanh on the output, no biases. Discriminator mirrors it: Conv(4, 2, 1) + LeakyReLU(0.2) with no
BatchNorm on the first layer, BatchNorm + LeakyReLU after, a last Conv(4, 1, 0) to one logit.
Init N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm weights. Adam 2e-4, betas (0.5, 0.999).

Departure: the paper's nets are 64x64, a 4x4 start and four up-sampling blocks; here the start
and the number of blocks follow the image size: the start is the size halved while it stays an
integer of at least 4 (32 -> 4x4 and three blocks, 28 -> 7x7 and two blocks), so MNIST trains at
its own 28x28 rather than resized to 32x32. Resizing costs sharpness a digit classifier sees: the
held-out digits resized 28 -> 32 -> 28 score FLD 30 against themselves (5.5 unresized).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zoo.errors import UsageError
from zoo.plugins.gan import GAN


def upsampling_blocks(size: int) -> tuple[int, int]:
    """(start size, stride-2 blocks): 32 -> (4, 3), 28 -> (7, 2), 64 -> (4, 4)."""
    start, blocks = size, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, blocks = start // 2, blocks + 1
    if blocks < 2 or start > 7:
        raise UsageError(
            f"DCGAN needs an image size of 4..7 times a power of two >= 4, such as 28, 32 or 64 "
            f"(got {size}); pass --set image_size=32"
        )
    return start, blocks


def init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, channels: int, size: int):
        super().__init__()
        start, n = upsampling_blocks(size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, start, 1, 0, bias=False),
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
    """Ends in a logit; ``norm`` lets critics swap BatchNorm (WGAN-GP needs per-sample norms)."""

    def __init__(
        self, ndf: int, channels: int, size: int, norm: Callable[[int], nn.Module] = nn.BatchNorm2d
    ):
        super().__init__()
        start, n = upsampling_blocks(size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                norm(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, start, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class DCGAN(GAN):
    """The GAN's objective and train step (plugins/gan.py) with convolutional networks."""

    defaults = {
        "nz": 100,
        "ngf": 64,
        "ndf": 64,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "ema_decay": 0.0,
        "augment": "",
    }
    train_defaults = {"batch_size": 64, "image_size": 32}

    def networks(self) -> tuple[nn.Module, nn.Module]:
        c, spec = self.config, self.spec
        generator = Generator(c["nz"], c["ngf"], spec.channels, spec.size)
        discriminator = Discriminator(c["ndf"], spec.channels, spec.size)
        return generator.apply(init_weights), discriminator.apply(init_weights)
