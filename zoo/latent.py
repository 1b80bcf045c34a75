"""A base for families that sample by pushing noise (and class labels) through a generator.

GAN, cGAN, DCGAN, WGAN and PGGAN share this: the exported graph is ``generator(z[, labels])
-> image``, and sampling draws ``z ~ N(0, I)`` from the request's seeded generator.
"""

from __future__ import annotations

import torch

from zoo.model import GenerativeModel, Graph, Runner, SampleRequest


class LatentModel(GenerativeModel):
    """Subclasses define ``self.generator`` (or name an EMA copy first in ``inference``) and
    a ``nz`` config key; conditional ones take ``labels`` as the generator's second input."""

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
