"""A base for families that sample by pushing noise (and class labels) through a generator.

GAN, cGAN, DCGAN, WGAN and PGGAN share this: the exported graph is ``generator(z[, labels])
-> image``, and sampling draws ``z ~ N(0, I)`` from the request's seeded generator.

It also keeps the exponential moving average of the generator's weights that PGGAN samples
from (Karras et al. 2018; Yazici et al. 2019 for other GANs): ``generator_ema``, updated by
`update_ema` after each generator step with the decay ramped up as min(decay, (1 + t) / (10 + t))
(TensorFlow's num_updates rule), since a fixed 0.999 would still carry much of the random
initialisation after a few thousand steps. Where G has BatchNorm, the average keeps its own
statistics: the averaged weights' activations differ from the raw G's, and copying the raw
running statistics into it measurably hurts samples.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from zoo.contract.model import GenerativeModel, Graph, Runner, SampleRequest


class LatentModel(GenerativeModel):
    """Subclasses define ``self.generator`` (or name an EMA copy first in ``inference``) and
    a ``nz`` config key; conditional ones take ``labels`` as the generator's second input."""

    generator: nn.Module
    generator_ema: nn.Module

    def enable_ema(self) -> None:
        """Sample and export from ``generator_ema``, an average of ``generator``'s weights."""
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.inference = ("generator_ema", *self.inference[1:])
        self._ema_norms = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.generator.modules()
        )

    @torch.no_grad()
    def update_ema(self, step: int, *inputs: torch.Tensor) -> None:
        """ema = decay * ema + (1 - decay) * weights; ``inputs`` (the step's G inputs) refresh
        the average's own BatchNorm statistics where G has BatchNorm."""
        decay = min(self.config["ema_decay"], (1 + step) / (10 + step))
        for e, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            e.lerp_(p, 1 - decay)
        if self._ema_norms and inputs:
            self.generator_ema.train()(*inputs)

    def graphs(self) -> dict[str, Graph]:
        network = getattr(self, self.inference[0]).eval()
        nz = self.config["nz"]
        example = {"z": torch.randn(2, nz, generator=torch.Generator().manual_seed(0))}
        meta = {"latent_dim": str(nz), "latent_distribution": "standard normal"}
        if self.conditional:
            example["labels"] = torch.tensor([0, self.spec.num_classes - 1])
            meta["labels"] = f"int64 class indices in [0, {self.spec.num_classes})"
        return {"generator": Graph(network, example, ["image"], meta)}

    def sample(self, request: SampleRequest, run: Runner) -> torch.Tensor:
        z = torch.randn(request.n, self.config["nz"], generator=request.generator)
        if not self.conditional:
            return run("generator", z=z)["image"]
        labels = request.labels
        if labels is None:
            labels = torch.randint(self.spec.num_classes, (request.n,), generator=request.generator)
        return run("generator", z=z, labels=labels)["image"]
