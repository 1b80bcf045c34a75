"""Class-conditional GAN (Mirza & Osindero 2014) on DCGAN networks.

The paper conditions both networks by concatenating the class label y: with the noise z in the
generator, and with the input in the discriminator. Here y is a learned embedding (``embed_dim``
values per class) rather than a one-hot vector, which is the same thing up to a linear map in
the first layer. Generator: [z, embed(y)] -> the DCGAN generator. Discriminator: the embedding
broadcast over the image as ``embed_dim`` extra channels -> the DCGAN discriminator.
Loss: the non-saturating GAN loss with BCEWithLogits, Adam 2e-4, betas (0.5, 0.999).

Departures: the paper's MNIST model is an MLP with maxout units and dropout; DCGAN's conv nets
train faster and sharper on the same data and are what current cGAN implementations use.
MNIST trains at its own 28x28 (a 7x7 start, as in the dcgan family). A projection
discriminator (Miyato & Koyama 2018) is the stronger modern variant; concatenation is kept
because it is the paper's method and already gives the class the label asks for on MNIST.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zoo.contract.blocks import OBJECTIVES, adversarial_step, normal_init
from zoo.contract.model import Batch
from zoo.plugins.dcgan import Discriminator, Generator, d_norm_layer, initialised
from zoo.plugins.gan import GAN


class ConditionalGenerator(nn.Module):
    def __init__(
        self,
        nz: int,
        num_classes: int,
        embed_dim: int,
        ngf: int,
        channels: int,
        size: int,
        layout: str = "fit",
    ):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = Generator(nz + embed_dim, ngf, channels, size, layout)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(labels)], dim=1))


class ConditionalDiscriminator(nn.Module):
    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        ndf: int,
        channels: int,
        size: int,
        layout: str = "fit",
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = Discriminator(ndf, channels + embed_dim, size, norm, layout)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = self.embed(labels)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.net(torch.cat([x, y], dim=1))


class CGAN(GAN):
    """The GAN's objective and optimisers (plugins/gan.py), conditioned on class labels."""

    conditional = True

    def networks(self) -> tuple[nn.Module, nn.Module]:
        c, spec, n = self.config, self.spec, self.spec.num_classes
        generator = ConditionalGenerator(
            c["nz"], n, c["embed_dim"], c["ngf"], spec.channels, spec.size, c["layout"]
        )
        discriminator = ConditionalDiscriminator(
            n, c["embed_dim"], c["ndf"], spec.channels, spec.size, c["layout"],
            d_norm_layer(c["d_norm"]),
        )  # fmt: skip
        # DCGAN's N(0, 0.02) init for the convolutions; embeddings keep their N(0, 1) init
        return generator.apply(normal_init), initialised(discriminator, c["d_norm"])

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real, labels = batch.images, batch.labels
        assert labels is not None  # a conditional family: the trainer refuses unlabelled data
        z = batch.noise.randn(len(real), self.config["nz"], device=real.device)
        # fakes are judged under the labels they were generated for, so D learns the pairing
        objective = OBJECTIVES[self.config["loss"]]
        return adversarial_step(self, step, real, (z, labels), objective, d_args=(labels,))
