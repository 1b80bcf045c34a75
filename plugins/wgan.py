"""Wasserstein GAN with either Lipschitz constraint, chosen by ``penalty``.

``penalty = "clip"`` (Arjovsky et al. 2017, martinarjovsky/WassersteinGAN): the critic has no
sigmoid and minimises D(fake) - D(real); after every critic step all its parameters are clamped
to [-clip, clip]. RMSprop lr 5e-5 for both nets, n_critic 5, and, as in the reference code,
100 critic steps for the first 25 generator steps and every 500th one, so the critic is close
to optimal when the generator follows it. The critic keeps the reference's BatchNorm. The
catalogue's wgan-mnist departs from the reference with ``n_critic = 1`` between the bursts:
in the same CPU time it reached FLD 27.9 (7,500 generator steps) against 32.7 with 2 and 45.6
with 5; the bursts keep the clipped critic near optimal, and more generator steps paid more.

``penalty = "gp"`` (Gulrajani et al. 2017): instead of clipping, lambda * (||grad D(x_hat)||_2
- 1)^2 on random interpolates x_hat of real and fake images. BatchNorm would make each critic
output depend on the whole batch, which the per-sample penalty assumes it does not, so the
critic uses layer normalisation (the paper's recommendation). n_critic 5 throughout, Adam lr
1e-4 with the betas of the paper's Algorithm 1, (0, 0.9); its MNIST script used (0.5, 0.9).

Both use DCGAN's generator and a DCGAN-shaped critic (MNIST at its own 28x28). The
logged ``wasserstein`` is the critic's estimate E[D(real)] - E[D(fake)] averaged over the
step's critic updates: the curve to watch, since it tracks sample quality for a WGAN.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.contract.augment import augment, parse_policy
from zoo.contract.blocks import adam, gradient_penalty, normal_init, wasserstein_estimate
from zoo.contract.latent import LatentModel
from zoo.contract.model import Batch
from zoo.plugins.dcgan import Discriminator, Generator


def critic(ndf: int, channels: int, size: int, layer_norm: bool, layout: str = "fit") -> nn.Module:
    """DCGAN's discriminator read as a critic (no sigmoid follows). ``layer_norm`` swaps its
    BatchNorm for a per-sample LayerNorm over (C, H, W) (GroupNorm with one group)."""
    norm = (lambda width: nn.GroupNorm(1, width)) if layer_norm else nn.BatchNorm2d
    return Discriminator(ndf, channels, size, norm, layout)


class WGAN(LatentModel):
    """Settings: WGANConfig in zoo/plugins/__init__.py (which refuses mixing the two
    constraints' settings)."""

    def __init__(self, config, spec):
        super().__init__(config, spec)
        self.gp = config["penalty"] == "gp"
        c = config
        self.generator = Generator(c["nz"], c["ngf"], spec.channels, spec.size, c["layout"])
        self.critic = critic(c["ndf"], spec.channels, spec.size, self.gp, c["layout"])
        self.apply(normal_init)
        if config["ema_decay"] > 0:
            self.enable_ema()
        self.augment = parse_policy(config["augment"])

    def configure_optimizers(self):
        c = self.config
        nets = {"generator": self.generator, "critic": self.critic}
        if self.gp:
            betas = (c["beta1"], c["beta2"])
            return {k: adam(n.parameters(), c["adam_lr"], betas) for k, n in nets.items()}
        return {k: torch.optim.RMSprop(n.parameters(), c["rmsprop_lr"]) for k, n in nets.items()}

    def batches_per_step(self, step: int) -> int:
        """Critic updates (one fresh batch each) before generator update ``step``."""
        c = self.config
        if not self.gp and (step < c["burst_steps"] or step % c["burst_every"] == 0):
            return c["burst_critic"]
        return c["n_critic"]

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        c, opt = self.config, self.optimizers
        reals = batch.images.chunk(self.batches_per_step(step))
        estimates, penalties = [], []
        for real in reals:
            with torch.no_grad():
                fake = self.generator(batch.noise.randn(len(real), c["nz"], device=real.device))
            real, fake = augment(real, self.augment), augment(fake, self.augment)
            distance = wasserstein_estimate(self.critic(real), self.critic(fake))
            loss = -distance
            if self.gp:
                mix = batch.noise.rand(len(real), 1, 1, 1, device=real.device)
                penalty = gradient_penalty(self.critic, real, fake, mix)
                loss = loss + c["gp_weight"] * penalty
                penalties.append(penalty.detach())
            opt["critic"].zero_grad(set_to_none=True)
            loss.backward()
            opt["critic"].step()
            if not self.gp:
                with torch.no_grad():
                    for p in self.critic.parameters():
                        p.clamp_(-c["clip"], c["clip"])
            estimates.append(distance.detach())

        # the generator step needs gradients through the critic, not for its weights
        self.critic.requires_grad_(False)
        z = batch.noise.randn(len(reals[0]), c["nz"], device=reals[0].device)
        g_loss = -self.critic(augment(self.generator(z), self.augment)).mean()
        opt["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        opt["generator"].step()
        self.critic.requires_grad_(True)
        if hasattr(self, "generator_ema"):
            self.update_ema(step, z)

        losses = {"wasserstein": torch.stack(estimates).mean(), "g_loss": g_loss.detach()}
        if self.gp:
            losses["gradient_penalty"] = torch.stack(penalties).mean()
        return losses
