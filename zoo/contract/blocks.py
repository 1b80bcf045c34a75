"""Building blocks that families share: GAN losses and objectives, the gradient penalty, the
GAN train step, the DCGAN weight initialisation and Adam as zoo builds it. A stable, public
module: the built-in families and third-party plugins (examples/zoo-lsgan) use these rather
than copies of their own. The EMA of generator weights lives with the latent-model base class
(`zoo.contract.latent.LatentModel`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.contract.augment import augment

Loss = Callable[[torch.Tensor, float], torch.Tensor]


def non_saturating_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCE with logits against a constant target (Goodfellow et al. 2014): with target 1 for
    the generator's fakes this is the non-saturating loss -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def least_squares_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """E[(D(.) - target)^2] (Mao et al. 2017; CycleGAN's adversarial loss)."""
    return ((scores - target) ** 2).mean()


def hinge_discriminator_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """E[max(0, m - D(real))] + E[max(0, m + D(fake))], the hinge loss of geometric GAN
    (Lim & Ye 2017) and SAGAN/BigGAN; the generator minimises -E[D(G(z))]. ``margin`` plays the
    role of the real target: below 1 it is a softer push on reals."""
    return F.relu(margin - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def _identity(scores: torch.Tensor) -> torch.Tensor:
    return scores


@dataclass(frozen=True)
class Objective:
    """A GAN objective for `adversarial_step`: D's loss from its outputs on reals and fakes
    and the real target (``real_target`` in the config), G's loss from D's outputs on its
    fakes, and ``report``, which maps outputs to the logged d_real / d_fake (probabilities
    for a logit, raw scores otherwise)."""

    discriminator: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    report: Callable[[torch.Tensor], torch.Tensor] = _identity

    @classmethod
    def from_targets(cls, loss: Loss, report: Callable = _identity) -> Objective:
        """The objective of a loss against targets: reals to the real target, fakes to 0 for
        D, and fakes to 1 for G (non-saturating and least squares are both of this form)."""
        return cls(
            lambda real, fake, target: loss(real, target) + loss(fake, 0.0),
            lambda fake: loss(fake, 1.0),
            report,
        )


NON_SATURATING = Objective.from_targets(non_saturating_loss, torch.sigmoid)
LEAST_SQUARES = Objective.from_targets(least_squares_loss)
HINGE = Objective(hinge_discriminator_loss, lambda fake: -fake.mean())
# by the names of plugins.GANObjective's ``loss`` setting
OBJECTIVES = {"non-saturating": NON_SATURATING, "least-squares": LEAST_SQUARES, "hinge": HINGE}


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
    # under bf16 autocast the generator's images are bf16: mix in the real images' dtype
    x_hat = torch.lerp(real.detach(), fake.detach().to(real.dtype), a).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the mean of ||grad_x D(x)||^2 over real images, penalising
    the discriminator's slope on the data alone. The graph is kept so it trains D."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def adam(
    params: Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused into a few kernels per step when the parameters are on a
    GPU (call it after the model has moved to its device, as ``configure_optimizers`` is).
    On the CPU it keeps PyTorch's default implementation, which the published recipes were
    trained with: its fused CPU kernel gave no speed-up on DCGAN here (docs/bench.md)."""
    params = list(params)
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.Adam(params, lr, betas=betas, eps=eps, fused=fused or None)


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
    objective: Objective = NON_SATURATING,
    d_args: tuple[torch.Tensor, ...] = (),
) -> dict[str, torch.Tensor]:
    """Discriminator updates, then one generator update, then the generator's EMA if it keeps
    one: the train step of the GAN-objective families (gan, dcgan, cgan, the LSGAN example).

    ``model`` has ``generator``, ``discriminator`` and ``optimizers`` with those two names.
    ``real`` holds ``model.batches_per_step(step)`` batches (the trainer draws that many):
    D takes one update per batch, each against fakes of its own share of ``g_inputs`` (z, and
    labels for conditional models) and ``d_args`` (extra D inputs: class labels), and G one
    update on the last batch's fakes (SNGAN's n_dis; with one batch, one update each).
    ``objective`` gives both players' losses (`Objective`). Optional on ``model``:
    ``augment``, DiffAugment policies applied to everything D sees (zoo.contract.augment;
    default none), and ``config["real_target"]``, D's target for reals (default 1.0; below 1
    is one-sided label smoothing).
    """
    opt, policies = model.optimizers, getattr(model, "augment", ())
    target = model.config.get("real_target", 1.0)
    shares = max(1, model.batches_per_step(step))

    def split(tensors: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, ...]]:
        return list(zip(*(x.chunk(shares) for x in tensors))) or [()] * shares

    def d(images: torch.Tensor, extra: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model.discriminator(augment(images, policies), *extra)

    d_losses, reports = [], []
    for real_i, g_i, d_i in zip(real.chunk(shares), split(g_inputs), split(d_args)):
        fake = model.generator(*g_i)  # the last one keeps its graph for G's update
        real_out, fake_out = d(real_i, d_i), d(fake.detach(), d_i)
        d_loss = objective.discriminator(real_out, fake_out, target)
        opt["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        opt["discriminator"].step()
        d_losses.append(d_loss.detach())
        reports.append(
            (objective.report(real_out).mean().detach(), objective.report(fake_out).mean().detach())
        )

    g_loss = objective.generator(d(fake, d_i))
    opt["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    opt["generator"].step()
    if hasattr(model, "generator_ema"):
        model.update_ema(step, *g_i)
    return {
        "d_loss": torch.stack(d_losses).mean(),
        "g_loss": g_loss.detach(),
        "d_real": torch.stack([r for r, _ in reports]).mean(),
        "d_fake": torch.stack([f for _, f in reports]).mean(),
    }


def spectral_norm(module: nn.Module) -> nn.Module:
    """Every convolution and linear layer of ``module`` divided by its largest singular value,
    estimated by one power iteration per forward (Miyato et al. 2018, SNGAN): a 1-Lipschitz
    discriminator without BatchNorm. Apply it after initialising the weights."""
    for layer in list(module.modules()):
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.utils.parametrizations.spectral_norm(layer)
    return module
