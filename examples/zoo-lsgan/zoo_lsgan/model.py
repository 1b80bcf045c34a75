"""Least-squares GAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks").

The discriminator outputs an unbounded score and both players minimise squared errors
(the paper's eq. 2 with a=0 for fakes, b=1 for reals and c=1 as the generator's target):

  D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]        G: 1/2 E[(D(G(z)) - 1)^2]

which penalises fakes far from the decision boundary even when they are classified
correctly, giving the generator gradients where the sigmoid cross-entropy saturates.

Networks and optimisers: zoo's built-in DCGAN (zoo.plugins.dcgan), whose discriminator
already ends in an unbounded score. Departure: the paper's LSUN nets are larger (and it uses
lr 1e-3 for some runs); here the DCGAN recipe applies, Adam 2e-4 with betas (0.5, 0.999), so
results compare with `dcgan` and only the loss differs.
"""

from __future__ import annotations

import torch

from zoo.contract.blocks import Objective, adversarial_step, least_squares_loss
from zoo.contract.model import Batch
from zoo.plugins.dcgan import DCGAN


def half_least_squares(scores: torch.Tensor, target: float) -> torch.Tensor:
    """1/2 E[(D(.) - target)^2]: targets b=1 for reals, a=0 for fakes, c=1 for the generator."""
    return 0.5 * least_squares_loss(scores, target)


# scores are unbounded, so the logged d_real / d_fake are the raw scores
OBJECTIVE = Objective.from_targets(half_least_squares)


class LSGAN(DCGAN):
    """DCGAN's networks trained with the least-squares objective (the ``loss`` setting of
    zoo's GAN families offers "least-squares" too, without the paper's 1/2 factors; this
    family keeps them, as the paper writes its objective)."""

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real = batch.images
        z = batch.noise.randn(len(real), self.config["nz"], device=real.device)
        return adversarial_step(self, step, real, (z,), OBJECTIVE)
