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


def upsampling_blocks(size: int, start: int = 0) -> tuple[int, int, bool]:
    """(start size, stride-2 blocks, odd): how the networks get from 1x1 to ``size``.

    ``start = 0``: the size halved while it stays even and >= 4 (32 -> 4x4 and 3 blocks,
    28 -> 7x7 and 2 blocks). ``start = 4``: always the paper's 4x4; a size of 7 times a
    power of two gets one odd block (4 -> 7, a 3x3 kernel), so 28 has 3 blocks like 32.
    """
    first, blocks = size, 0
    while first % 2 == 0 and first // 2 >= 4:
        first, blocks = first // 2, blocks + 1
    if blocks < 2 or first > 7:
        raise UsageError(
            f"DCGAN needs an image size of 4..7 times a power of two >= 4, such as 28, 32 or 64 "
            f"(got {size}); pass --set image_size=32"
        )
    if start == 0 or first == 4:
        return first, blocks, False
    if start == 4 and first == 7:
        return 4, blocks + 1, True
    raise UsageError(
        f"start = {start} needs an image size of 4 or 7 times a power of two (got {size}); "
        "use start = 0 (a start of 4x4..7x7 that fits the size) or start = 4"
    )


def init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, channels: int, size: int, start: int = 0):
        super().__init__()
        first, n, odd = upsampling_blocks(size, start)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, first, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for i in range(n - 1):
            kernel = 3 if odd and i == 0 else 4  # 4x4 -> 7x7, then doubling
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel, 2, 1, bias=False),
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
        self,
        ndf: int,
        channels: int,
        size: int,
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d,
        start: int = 0,
    ):
        super().__init__()
        first, n, odd = upsampling_blocks(size, start)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for i in range(n - 1):
            kernel = 3 if odd and i == n - 2 else 4  # halving, then 7x7 -> 4x4
            layers += [
                nn.Conv2d(width, width * 2, kernel, 2, 1, bias=False),
                norm(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, first, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class DCGAN(GAN):
    """The GAN's objective and train step (plugins/gan.py) with convolutional networks."""

    # the GAN's objective settings, with convolution widths in place of the MLP's layers
    defaults = {
        "nz": 100,
        "ngf": 64,
        "ndf": 64,
        "start": 0,  # 4: the paper's 4x4 start at every size (see upsampling_blocks)
        **{k: v for k, v in GAN.defaults.items() if k not in ("nz", "g_hidden", "d_hidden")},
    }
    train_defaults = {"batch_size": 64, "image_size": 32}

    def networks(self) -> tuple[nn.Module, nn.Module]:
        c, spec = self.config, self.spec
        generator = Generator(c["nz"], c["ngf"], spec.channels, spec.size, c["start"])
        discriminator = Discriminator(c["ndf"], spec.channels, spec.size, start=c["start"])
        return generator.apply(init_weights), discriminator.apply(init_weights)
