"""Building blocks that families share: GAN losses, the gradient penalty, the GAN train step,
and the DCGAN weight initialisation. A stable, public module: the built-in families and
third-party plugins (examples/zoo-lsgan) use these rather than copies of their own. The EMA of
generator weights lives with the latent-model base class (`zoo.latent.LatentModel`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.augment import augment

Loss = Callable[[torch.Tensor, float], torch.Tensor]


def non_saturating_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCE with logits against a constant target (Goodfellow et al. 2014): with target 1 for
    the generator's fakes this is the non-saturating loss -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def least_squares_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """E[(D(.) - target)^2] (Mao et al. 2017; CycleGAN's adversarial loss)."""
    return ((scores - target) ** 2).mean()


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """A critic's estimate of the Wasserstein-1 distance, E[D(real)] - E[D(fake)]: the critic
    maximises it and the curve tracks sample quality (Arjovsky et al. 2017)."""
    return real_scores.mean() - fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    mix: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017): the mean of (||grad_x D(x_hat)||_2 - 1)^2
    over x_hat = real + a (fake - real), a ~ U(0, 1) per sample (or ``mix``). The graph is
    kept so the penalty trains the critic. ``critic`` is any function of images, such as a
    closure over a growing network's stage."""
    a = torch.rand(len(real), 1, 1, 1, device=real.device) if mix is None else mix
    x_hat = torch.lerp(real.detach(), fake.detach(), a).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def normal_init(m: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. 2015), for ``module.apply``: convolutions
    N(0, 0.02) with zero biases, BatchNorm scales N(1, 0.02) with zero shifts."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def adversarial_step(
    model: Any,
    step: int,
    real: torch.Tensor,
    g_inputs: tuple[torch.Tensor, ...],
    loss: Loss = non_saturating_loss,
    d_args: tuple[torch.Tensor, ...] = (),
    report: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid,
) -> dict[str, torch.Tensor]:
    """One discriminator then one generator update, then the generator's EMA if it keeps one:
    the train step of the GAN-objective families (gan, dcgan, cgan, the LSGAN example).

    ``model`` has ``generator``, ``discriminator``, ``optimizers`` with those two names,
    ``augment`` (DiffAugment policies, zoo.augment) and a ``real_target`` config key.
    ``g_inputs`` are the generator's inputs (z, and labels for conditional models).
    ``loss(output, target)`` scores discriminator outputs against ``real_target`` (reals)
    or 0 (fakes); the generator's fakes are scored against 1. ``d_args`` are extra
    discriminator inputs (class labels); ``report`` maps outputs to the logged d_real/d_fake.
    """
    opt, policies = model.optimizers, model.augment

    def d(images: torch.Tensor) -> torch.Tensor:
        return model.discriminator(augment(images, policies), *d_args)

    fake = model.generator(*g_inputs)
    real_out, fake_out = d(real), d(fake.detach())
    d_loss = loss(real_out, model.config["real_target"]) + loss(fake_out, 0.0)
    opt["discriminator"].zero_grad(set_to_none=True)
    d_loss.backward()
    opt["discriminator"].step()

    g_loss = loss(d(fake), 1.0)
    opt["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    opt["generator"].step()
    if hasattr(model, "generator_ema"):
        model.update_ema(step, *g_inputs)
    return {
        "d_loss": d_loss.detach(),
        "g_loss": g_loss.detach(),
        "d_real": report(real_out).mean().detach(),
        "d_fake": report(fake_out).mean().detach(),
    }
