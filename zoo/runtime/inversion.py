"""Inversion: for each target image, the latent (and, for conditional models, the class) whose
image through the prior graph is closest to it.

Closest in pixels and in features (a perceptual loss: zoo passes its digit classifier's
penultimate features, `zoo.judge.classifier`), found by Adam on ``z`` through the frozen graph
from several random starts, keeping each image's best (the GAN-inversion recipe of Zhu et al.
2016 and Creswell & Bharath 2018, with a feature loss instead of a learned encoder). A family
that can encode (the VAE: `GenerativeModel.encode_prior`) gives the first start, which the
steps then refine; with ``steps = 0`` that encoding is the answer. A conditional model's class
is chosen first, by a shorter search from one start under every class.

A multi-step family (diffusion, flow) needs no search: its deterministic sampler runs
backwards from the image to the x_T that samples it (`invert_sampler`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from zoo.contract import diffusion
from zoo.errors import UsageError
from zoo.runtime.latents import Prior

Generator = Callable[..., torch.Tensor]  # (z[, labels]) -> images in [-1, 1]
Features = Callable[[torch.Tensor], torch.Tensor]  # images -> (n, d), differentiable

# Measured on 16 held-out digits through dcgan-mnist and vae-mnist (200 steps, 4 starts):
# lr 0.02 left both less converged; a feature weight of 1 let the features (mean square
# near 19) drown the pixels, and 0.01 beat 0.003 in features at the same pixel error; a pull
# of z towards the typical norm cost the VAE most of its accuracy (it moves the coordinate
# that picks the mixture component), so there is none.
LEARNING_RATE = 0.05  # Adam on z, decayed linearly to zero
FEATURE_WEIGHT = 0.01  # feature MSE against pixel MSE
MAX_STEPS, MAX_RESTARTS = 10_000, 64
CLASS_SEARCH = 4  # the class search runs steps / CLASS_SEARCH steps from one start


@dataclass
class Inversion:
    """Per target: the latent found, its class (conditional models), the loss it reached and
    its image."""

    z: torch.Tensor
    labels: torch.Tensor | None
    loss: torch.Tensor
    images: torch.Tensor


def losses(
    images: torch.Tensor,
    targets: torch.Tensor,
    features: Features | None,
    target_features: torch.Tensor | None,
) -> torch.Tensor:
    """Per image: pixel MSE, plus the weighted feature MSE where there are features."""
    loss = F.mse_loss(images, targets, reduction="none").flatten(1).mean(1)
    if features is not None and target_features is not None:
        loss = loss + FEATURE_WEIGHT * (features(images) - target_features).pow(2).mean(1)
    return loss


def _descend(
    generator: Generator,
    targets: torch.Tensor,
    z: torch.Tensor,
    labels: torch.Tensor | None,
    steps: int,
    features: Features | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on every row of ``z`` at once (each row against its own target); the rows' final
    latents and losses."""
    z = z.clone().requires_grad_(True)
    extra = () if labels is None else (labels,)
    with torch.no_grad():
        target_features = features(targets) if features is not None else None
    if steps:
        optimiser = torch.optim.Adam([z], lr=LEARNING_RATE)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda i: 1 - i / steps)
        for _ in range(steps):
            loss = losses(generator(z, *extra), targets, features, target_features)
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimiser.step()
            schedule.step()
    with torch.no_grad():
        final = losses(generator(z, *extra), targets, features, target_features)
    return z.detach(), final


def _best(
    z: torch.Tensor, loss: torch.Tensor, tries: int, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows laid out as ``tries`` blocks of ``n``: each target's best row, its loss and the
    index of its block."""
    loss = loss.view(tries, n)
    which = loss.argmin(0)
    rows = which * n + torch.arange(n, device=z.device)
    return z[rows], loss.min(0).values, which


def invert(
    generator: Generator,
    prior: Prior,
    targets: torch.Tensor,
    *,
    steps: int = 200,
    restarts: int = 4,
    seed: int = 0,
    labels: torch.Tensor | None = None,
    features: Features | None = None,
    start: torch.Tensor | None = None,
) -> Inversion:
    """Invert ``targets`` (images in [-1, 1], on the generator's device) through
    ``generator``. ``labels`` fixes a conditional model's classes (else they are searched);
    ``start`` is an encoder's latents for the first start."""
    if not 0 <= steps <= MAX_STEPS or not 1 <= restarts <= MAX_RESTARTS:
        raise UsageError(
            f"--steps must be 0 to {MAX_STEPS:,} and --restarts 1 to {MAX_RESTARTS} "
            f"(got {steps}, {restarts})"
        )
    if steps == 0 and start is None:
        raise UsageError("--steps 0 needs a family that encodes images (the VAE): give steps")
    n, device = len(targets), targets.device
    draws = torch.Generator().manual_seed(seed)

    def starts(tries: int) -> torch.Tensor:
        z = torch.randn(tries, n, prior.latent, generator=draws).to(device)
        if start is not None:
            z[0] = start
        return z.flatten(0, 1)

    if prior.conditional and labels is None:  # the class first: a short search under each
        classes = torch.arange(prior.num_classes, device=device).repeat_interleave(n)
        z0 = starts(1).repeat(prior.num_classes, 1)
        short = max(1, steps // CLASS_SEARCH) if steps else 0
        every = targets.repeat(prior.num_classes, 1, 1, 1)
        found, loss = _descend(generator, every, z0, classes, short, features)
        _, _, labels = _best(found, loss, prior.num_classes, n)
    repeated = labels.repeat(restarts) if labels is not None else None
    z, loss = _descend(
        generator, targets.repeat(restarts, 1, 1, 1), starts(restarts), repeated, steps, features
    )
    z, loss, _ = _best(z, loss, restarts, n)
    with torch.no_grad():
        images = generator(z, *(() if labels is None else (labels,)))
    return Inversion(z.cpu(), None if labels is None else labels.cpu(), loss.cpu(), images.cpu())


def invert_sampler(
    description: diffusion.Diffusion,
    network: diffusion.Network,
    targets: torch.Tensor,
    labels: torch.Tensor | None,
) -> Inversion:
    """A multi-step model's latents (x_T, flattened) for ``targets``: its sampler run
    backwards (`zoo.contract.diffusion.invert`), the loss the pixel MSE of the images they
    sample. A conditional model's class, where not given, is the one under which it
    predicts the image's noising best (`zoo.contract.diffusion.class_errors`): with an exact
    inversion every class reconstructs the image, so reconstruction cannot choose."""
    x = targets.detach().cpu().numpy()
    classes = None if labels is None else labels.cpu().numpy()
    if classes is None and description.num_classes:
        classes = diffusion.class_errors(description, network, x).argmin(1).astype(np.int64)
    z = diffusion.invert(description, network, x, labels=classes)
    images = diffusion.denoise(description, network, z, labels=classes)
    loss = ((images - x) ** 2).reshape(len(x), -1).mean(1).astype(np.float32)
    return Inversion(
        torch.from_numpy(z.reshape(len(z), -1)),
        None if classes is None else torch.from_numpy(classes),
        torch.from_numpy(loss),
        torch.from_numpy(images),
    )
