"""DCGAN (Radford et al. 2015), following pytorch/examples dcgan/main.py.

Generator: ConvTranspose(nz -> ngf*2^k, 4, 1, 0) to 4x4, then ConvTranspose(4, 2, 1) blocks
halving the channels and doubling the size up to the image; BatchNorm + ReLU on hidden layers,
Tanh on the output, no biases. Discriminator mirrors it: Conv(4, 2, 1) + LeakyReLU(0.2) with no
BatchNorm on the first layer, BatchNorm + LeakyReLU after, a last Conv(4, 1, 0) to one logit.
Init N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm weights. Adam 2e-4, betas (0.5, 0.999).

Departure: the paper's nets are 64x64, a 4x4 start and four up-sampling blocks; here the
number of blocks follows the image size, and ``layout`` says how a size of 7 times a power of
two such as MNIST's 28 is reached (layout_for):

- ``fit`` (the default): a 7x7 start and two blocks, widths 128 and 64 at ngf = 64;
- ``odd``: the paper's 4x4 start, then one 3x3-kernel block to 7x7: three blocks, as at 32;
- ``pad``: the 32x32 networks of the tutorials; G crops its 2-pixel border and D pads its
  input with background, which is what training on 28x28 digits padded to 32 does.

Resizing the data instead costs sharpness a digit classifier sees: the held-out digits resized
28 -> 32 -> 28 score FLD 30 against themselves (5.5 unresized); padding and cropping lose
nothing. On dcgan-mnist (FLD at 1,000 / 1,500 / 2,000 steps, one seed each, 2-core CPU):
fit 129 / 102 / 89 (and a plateau near 84 from 2,500 steps), odd 100 / 59 / 54, pad 72 / 26
/ 22 (18.4 at 3,000). The catalogue recipe uses ``pad`` and samples from an EMA of G
(``ema_decay``, plugins/gan.py), which scores 16.3 at 3,000 steps.

Beyond the paper, ``d_norm = "spectral"`` trades D's BatchNorm for spectral normalisation of
every layer (Miyato et al. 2018, SNGAN; `zoo.contract.blocks.spectral_norm`), and with
``d_steps`` (several D updates per G update, plugins/gan.py) and the hinge ``loss`` that is
SNGAN's recipe on DCGAN's networks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.contract.blocks import normal_init, spectral_norm
from zoo.errors import UsageError
from zoo.plugins import LAYOUTS
from zoo.plugins.gan import GAN


@dataclass(frozen=True)
class Layout:
    """How the networks get from 1x1 to the image: a ``first`` x ``first`` start, ``blocks``
    stride-2 blocks (the first of them 4 -> 7 when ``odd``), at ``size`` plus a border of
    ``pad`` pixels that G crops from its output and D adds (as background) to its input."""

    first: int
    blocks: int
    odd: bool = False
    pad: int = 0


def layout_for(size: int, layout: str = "fit") -> Layout:
    """``fit``: the size halved while it stays even and >= 4 (32 -> 4x4 and 3 blocks,
    28 -> 7x7 and 2 blocks). For sizes of 7 times a power of two, ``odd`` starts at 4x4 and
    gets to 7x7 with one 3x3-kernel block, and ``pad`` runs the nets at 8 times that power
    (28 -> 32: 4x4 and 3 blocks, 2 pixels of border); other sizes are laid out as ``fit``."""
    if layout not in LAYOUTS:
        raise UsageError(f"bad layout {layout!r}: choose from {', '.join(LAYOUTS)}")
    first, blocks = size, 0
    while first % 2 == 0 and first // 2 >= 4:
        first, blocks = first // 2, blocks + 1
    if blocks < 2 or first > 7:
        raise UsageError(
            f"DCGAN needs an image size of 4..7 times a power of two >= 4, such as 28, 32 or 64 "
            f"(got {size}); pass --set image_size=32"
        )
    if first != 7 or layout == "fit":
        return Layout(first, blocks)
    if layout == "odd":
        return Layout(4, blocks + 1, odd=True)
    return Layout(4, blocks + 1, pad=size // 14)  # 7 * 2^k -> 8 * 2^k


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, channels: int, size: int, layout: str = "fit"):
        super().__init__()
        plan = layout_for(size, layout)
        self.crop = plan.pad
        width = ngf * 2 ** (plan.blocks - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, plan.first, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for i in range(plan.blocks - 1):
            kernel = 3 if plan.odd and i == 0 else 4  # 4x4 -> 7x7, then doubling
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z[:, :, None, None])
        c = self.crop
        return x[:, :, c:-c, c:-c] if c else x


class Discriminator(nn.Module):
    """Ends in a logit; ``norm`` lets critics swap BatchNorm (WGAN-GP needs per-sample norms)."""

    def __init__(
        self,
        ndf: int,
        channels: int,
        size: int,
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d,
        layout: str = "fit",
    ):
        super().__init__()
        plan = layout_for(size, layout)
        self.pad = plan.pad
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for i in range(plan.blocks - 1):
            kernel = 3 if plan.odd and i == plan.blocks - 2 else 4  # halving, then 7x7 -> 4x4
            layers += [
                nn.Conv2d(width, width * 2, kernel, 2, 1, bias=False),
                norm(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, plan.first, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:  # the border G crops away, as background: reals and fakes alike
            x = F.pad(x, (self.pad,) * 4, value=-1.0)
        return self.net(x).view(-1)


def d_norm_layer(name: str) -> Callable[[int], nn.Module]:
    """What follows each of D's halving convolutions for ``d_norm``: BatchNorm, or nothing
    (spectral normalisation acts on the weights instead: `initialised`)."""
    return nn.BatchNorm2d if name == "batch" else lambda width: nn.Identity()


def initialised(discriminator: nn.Module, d_norm: str) -> nn.Module:
    """DCGAN's N(0, 0.02) init, then spectral normalisation where ``d_norm`` asks for it (it
    reparametrises the initialised weights)."""
    discriminator.apply(normal_init)
    return spectral_norm(discriminator) if d_norm == "spectral" else discriminator


class DCGAN(GAN):
    """The GAN's objective and train step (plugins/gan.py) with convolutional networks;
    settings: DCGANConfig."""

    def networks(self) -> tuple[nn.Module, nn.Module]:
        c, spec = self.config, self.spec
        generator = Generator(c["nz"], c["ngf"], spec.channels, spec.size, c["layout"])
        norm = d_norm_layer(c["d_norm"])
        discriminator = Discriminator(c["ndf"], spec.channels, spec.size, norm, c["layout"])
        return generator.apply(normal_init), initialised(discriminator, c["d_norm"])
