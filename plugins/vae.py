"""Variational autoencoder (Kingma & Welling 2014), convolutional.

Encoder: two Conv(4, 2, 1) + ReLU blocks (the image shrinks 4x), a hidden Linear + ReLU, then
two Linear heads for the posterior's mean ``mu`` and log-variance ``logvar``. Decoder mirrors it
with two ConvTranspose(4, 2, 1) blocks and returns Bernoulli logits per pixel.

Loss: the negative ELBO per image, ``BCE(logits, (x + 1) / 2)`` summed over pixels plus the
closed-form ``KL(q(z|x) || N(0, I))``, with one reparameterised sample ``z = mu + eps *
exp(logvar / 2)``. Pixel intensities in [0, 1] are used as Bernoulli targets, as is usual for
MNIST (the data is not binarised), so ELBOs compare with other grey-level runs, not with
binarised-MNIST numbers. Adam 1e-3 (the paper used Adagrad; Adam is what current references use).

Departure: the paper's networks are MLPs; convolutions give sharper digits at the same cost.
Beyond the paper, ``shift`` translates each training image by a few pixels
(zoo/contract/augment.py), which keeps the VAE from memorising a small training set (the held-out
ELBO is the judge). The exported decoder returns ``sigmoid(logits) * 2 - 1`` (the Bernoulli mean in
[-1, 1]).

``prior = "mog"`` replaces N(0, I) with a uniform mixture of ``prior_components`` diagonal
normals whose means and variances train with the rest (the MoG prior of Tomczak & Welling
2018, VAE with a VampPrior). The KL term then has no closed form and is the one-sample
estimate log q(z|x) - log p(z), so the ELBO stays an unbiased estimate of the same bound. Prior
samples come from where the posteriors are instead of from the holes between them: the
exported ``decoder`` takes standard normal noise with one more coordinate, which picks the
component (`MixturePrior`), and ``latent_decoder`` decodes latents (reconstructions).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zoo.contract.augment import translation
from zoo.contract.blocks import adam
from zoo.contract.model import Batch, GenerativeModel, Graph, Runner, SampleRequest
from zoo.data import ImageSet, to_float
from zoo.errors import UsageError

VALIDATION_BATCH = 500


def _base(size: int) -> int:
    if size < 8 or size % 4:
        raise UsageError(f"the VAE needs an image size divisible by 4 and >= 8 (got {size})")
    return size // 4


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, in nats."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def normal_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension (broadcasting)."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def reconstruction_nll(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per sample under a Bernoulli per pixel, images in [-1, 1]."""
    bce = F.binary_cross_entropy_with_logits(logits, (images + 1) / 2, reduction="none")
    return bce.flatten(1).sum(1)


class Encoder(nn.Module):
    def __init__(self, nz: int, nf: int, hidden: int, channels: int, size: int):
        super().__init__()
        s = _base(size)
        self.net = nn.Sequential(
            nn.Conv2d(channels, nf, 4, 2, 1),
            nn.ReLU(True),
            nn.Conv2d(nf, nf * 2, 4, 2, 1),
            nn.ReLU(True),
            nn.Flatten(),
            nn.Linear(nf * 2 * s * s, hidden),
            nn.ReLU(True),
        )
        self.mu = nn.Linear(hidden, nz)
        self.logvar = nn.Linear(hidden, nz)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(image)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, nz: int, nf: int, hidden: int, channels: int, size: int):
        super().__init__()
        s = _base(size)
        self.net = nn.Sequential(
            nn.Linear(nz, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, nf * 2 * s * s),
            nn.ReLU(True),
            nn.Unflatten(1, (nf * 2, s, s)),
            nn.ConvTranspose2d(nf * 2, nf, 4, 2, 1),
            nn.ReLU(True),
            nn.ConvTranspose2d(nf, channels, 4, 2, 1),
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)) * 2 - 1


class MixturePrior(nn.Module):
    """A uniform mixture of K diagonal normals with learned means and log-variances.

    As a module it maps standard normal noise with one coordinate more than the latent to a
    sample of the mixture: the last coordinate picks the component through its normal CDF
    (K equal slices of probability), the others scale and shift it. So its samples, like
    every other family's, are a function of ``torch.randn`` alone, in PyTorch and in ONNX.
    """

    def __init__(self, components: int, nz: int):
        super().__init__()
        self.mu = nn.Parameter(torch.randn(components, nz))
        self.logvar = nn.Parameter(torch.zeros(components, nz))

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per row of ``z``."""
        log_p = normal_log_density(z[:, None], self.mu, self.logvar)
        return torch.logsumexp(log_p, dim=1) - math.log(len(self.mu))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(noise[:, -1] / math.sqrt(2)))
        k = (u * len(self.mu)).long().clamp(max=len(self.mu) - 1)
        return self.mu[k] + noise[:, :-1] * torch.exp(0.5 * self.logvar[k])

    def noise_of(self, z: torch.Tensor) -> torch.Tensor:
        """The noise `forward` maps to ``z``: the likeliest component's slice centre as the
        last coordinate, and ``z`` standardised by that component before it."""
        k = normal_log_density(z[:, None], self.mu, self.logvar).argmax(1)
        centre = (k.to(z.dtype) + 0.5) / len(self.mu)
        pick = math.sqrt(2) * torch.erfinv(2 * centre - 1)
        return torch.cat([(z - self.mu[k]) * torch.exp(-0.5 * self.logvar[k]), pick[:, None]], 1)


class VAE(GenerativeModel):
    """Settings: VAEConfig in zoo/plugins/__init__.py."""

    takes_input = True
    inference = ("encoder", "decoder")

    def __init__(self, config, spec):
        super().__init__(config, spec)
        c = config
        args = (c["nz"], c["nf"], c["hidden"], spec.channels, spec.size)
        self.encoder = Encoder(*args)
        self.decoder = Decoder(*args)
        self.prior = MixturePrior(c["prior_components"], c["nz"]) if c["prior"] == "mog" else None
        if self.prior is not None:
            self.inference = (*self.inference, "prior")

    def configure_optimizers(self):
        return {"vae": adam(self.parameters(), self.config["lr"])}

    def losses(
        self, images: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image reconstruction NLL and KL (the negative ELBO is their sum) for noise
        ``eps``, and the posterior means."""
        mu, logvar = self.encoder(images)
        z = mu + eps * torch.exp(0.5 * logvar)
        recon = reconstruction_nll(self.decoder.logits(z), images)
        if self.prior is None:
            return recon, kl_divergence(mu, logvar), mu
        # no closed form against a mixture: the one-sample estimate log q(z|x) - log p(z)
        return recon, normal_log_density(z, mu, logvar) - self.prior.log_density(z), mu

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        images = batch.images
        if self.config["shift"] > 0:
            images = translation(images, self.config["shift"])
        eps = batch.noise.randn(len(images), self.config["nz"], device=images.device)
        recon, kl, _ = self.losses(images, eps)
        loss = (recon + kl).mean()  # -ELBO per image
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "recon": recon.mean().detach(), "kl": kl.mean().detach()}

    @torch.no_grad()
    def validate(self, held_out: ImageSet) -> dict[str, float]:
        """Held-out ELBO (nats per image, higher is better), its two terms, and the mean
        squared error of reconstructions from the posterior mean (pixels in [-1, 1]).

        The noise comes from a fixed private generator: checkpoints are compared on the same
        draws, and the training RNG (and so a resumed run) is left untouched.
        """
        device = next(self.parameters()).device
        generator = torch.Generator().manual_seed(0)
        totals = torch.zeros(3, dtype=torch.float64)
        for start in range(0, len(held_out), VALIDATION_BATCH):
            images = to_float(held_out.images[start : start + VALIDATION_BATCH]).to(device)
            eps = torch.randn(len(images), self.config["nz"], generator=generator).to(device)
            recon, kl, mu = self.losses(images, eps)
            mse = (self.decoder(mu) - images).pow(2).flatten(1).mean(1)
            totals += torch.stack([recon.sum(), kl.sum(), mse.sum()]).double().cpu()
        recon, kl, mse = (totals / len(held_out)).tolist()
        return {"elbo": -(recon + kl), "recon_nll": recon, "kl": kl, "recon_mse": mse}

    def graphs(self) -> dict[str, Graph]:
        self.eval()
        nz, c, s = self.config["nz"], self.spec.channels, self.spec.size
        gen = torch.Generator().manual_seed(0)
        graphs = {
            "encoder": Graph(
                self.encoder,
                {"image": torch.rand(2, c, s, s, generator=gen) * 2 - 1},
                ["mu", "logvar"],
                {"posterior": "diagonal normal N(mu, exp(logvar))"},
            ),
            "decoder": Graph(
                self.decoder,
                {"z": torch.randn(2, nz, generator=gen)},
                ["image"],
                {"latent_dim": str(nz), "latent_distribution": "standard normal"},
            ),
        }
        if self.prior is None:
            return graphs
        # prior samples come from "decoder", as for every family: here noise -> mixture -> image
        graphs["latent_decoder"] = graphs["decoder"]
        k = len(self.prior.mu)
        graphs["decoder"] = Graph(
            nn.Sequential(self.prior, self.decoder),
            {"z": torch.randn(2, nz + 1, generator=gen)},
            ["image"],
            {
                "latent_dim": str(nz + 1),
                "latent_distribution": (
                    f"standard normal; the last coordinate picks one of the {k} components of "
                    "the prior (its normal CDF in equal slices), the others scale and shift it"
                ),
            },
        )
        return graphs

    @torch.no_grad()
    def encode_prior(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's means, as the noise the "decoder" graph takes (through the mixture
        prior's inverse where there is one): `zoo invert` starts there."""
        mu = self.encoder(images)[0]
        return mu if self.prior is None else self.prior.noise_of(mu)

    def sample(self, request: SampleRequest, run: Runner) -> torch.Tensor:
        """Prior samples; or reconstructions of ``inputs`` through their latent means. (Paths
        between inputs are zoo's: ``zoo sample --interpolate K --input A --input B`` inverts
        the two, starting from `encode_prior`, and joins them through "decoder".)"""
        if request.inputs is None:
            noise = self.config["nz"] + (self.prior is not None)
            z = torch.randn(request.n, noise, generator=request.generator)
            return run("decoder", z=z)["image"]
        decode = "decoder" if self.prior is None else "latent_decoder"
        mu = run("encoder", image=request.inputs)["mu"]
        return run(decode, z=mu)["image"]
