"""Progressive growing of GANs (Karras et al. 2018), after tkarras/progressive_growing_of_gans.

Both networks start at 4x4 (7x7 for 28x28 images) and grow one resolution at a time up to the
image size. Each new
block fades in with alpha going 0 -> 1: G outputs (1 - alpha) * upsample(old toRGB) + alpha *
new toRGB, and D mirrors it, blending fromRGB(avg-pooled input) into the new block's output.
Real images are avg-pooled to the current resolution and, while fading in, blended with their
own 2x down-and-up-sampled copy by the same alpha. Stage and alpha are a pure function of the
step (`schedule`), so a checkpoint resumes mid-fade exactly.

Networks (paper, table 2): G maps a pixel-normalised z through a dense layer to 4x4, then blocks
of nearest upsample + two 3x3 convs, each followed by LeakyReLU(0.2) and pixel norm; toRGB is a
linear 1x1 conv. D blocks are two 3x3 convs + avg-pool; the 4x4 head is minibatch stddev (group
4), a 3x3 conv, a 4x4 conv and a linear output. Every layer uses the equalised learning rate
(weights ~ N(0, 1), scaled at run time by gain / sqrt(fan_in), gain sqrt(2) except toRGB and the
output layer (1) and G's first dense layer (sqrt(2) / 4), as in the reference code).

Loss: WGAN-GP (lambda 10) plus drift 0.001 * E[D(x)^2], one D step per G step. Adam lr 1e-3,
betas (0, 0.99), eps 1e-8. ``loss`` may instead name one of zoo.contract.blocks.OBJECTIVES (the
paper's introduction calls its contributions orthogonal to the choice of loss); D then gets
the R1 penalty (Mescheder et al. 2018) on reals, gamma / 2 * E|grad D(x)|^2, in place of GP
and drift; on pggan-mnist (batch 16, 6,000 steps) the non-saturating loss with R1 (gamma 0.1)
reached FLD 69.9 against WGAN-GP's 53.7, so the recipe keeps the paper's loss. Either penalty
may be lazy (StyleGAN2's lazy regularisation): computed every ``penalty_every`` steps at that
many times the weight; the penalty's double backward is half of a step's time.
Samples and exports come from an EMA of G's weights (decay 0.999).
The schedule counts steps per fade-in and per stabilise phase (the paper: 600k images each; steps
keep the schedule a function of the step alone) and takes a batch size per resolution like the
reference code's ``minibatch_dict``, sliced from the batch the trainer draws.

Departures, for CPU budgets: channel widths are min(fmap_max, fmap_base / resolution) with far
smaller defaults (64 maps, a 64-d z) than the paper's (512 maps up to 32x32, a 512-d z); the
schedule runs hundreds of steps per phase, not 600k images; the G step reuses the D step's fakes
instead of drawing fresh latents; the reference code's Adam reset at each new resolution is left
out. The EMA decay ramps up as min(0.999, (1 + step) / (10 + step)) (TensorFlow's num_updates
rule): with a fixed 0.999, a run of a few thousand steps would still carry much of G's random
initialisation.
The exported graph is the EMA generator at its current stage and alpha, nearest-upsampled to the
full image size when training stopped before the last stage (its metadata says so), and clamped
to [-1, 1] (the paper's G output is linear).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from zoo.contract.blocks import OBJECTIVES, adam, gradient_penalty, r1_penalty, wasserstein_estimate
from zoo.contract.latent import LatentModel
from zoo.contract.model import Batch, Graph
from zoo.data import ImageSpec
from zoo.errors import UsageError


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each pixel's feature vector to unit mean square (G's replacement for BatchNorm)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the feature stddev over a group of samples, averaged to a scalar.

    As in the reference code, sample n belongs to group n % (N / G) and the variance is the
    population one; G shrinks to the largest divisor of N that is <= ``group_size``.
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    y = x.reshape(g, -1, c, h, w)
    std = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt()  # (N/G, C, H, W)
    std = std.mean(dim=(1, 2, 3)).repeat(g)  # sample n gets its group's value
    return torch.cat([x, std.view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate: N(0, 1) weights times gain / sqrt(fan_in) at run
    time, so Adam's normalised updates change every layer at the same relative speed."""

    def __init__(self, cin: int, cout: int, kernel: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin * kernel * kernel)
        self.padding = kernel // 2 if kernel == 3 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualLinear(nn.Module):
    def __init__(self, cin: int, cout: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _upsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest")


def growth(size: int) -> tuple[int, int]:
    """(start resolution, stages): halve the size while it stays an integer >= 4, so 32 grows
    4 -> 8 -> 16 -> 32 (4 stages) and 28 grows 7 -> 14 -> 28 (3 stages)."""
    start, stages = size, 1
    while start % 2 == 0 and start // 2 >= 4:
        start, stages = start // 2, stages + 1
    if stages < 2 or start > 7:
        raise UsageError(
            f"PGGAN grows to 4..7 times a power of two >= 2, such as 28, 32 or 64 (got {size}); "
            "pass --set image_size=32"
        )
    return start, stages


class Generator(nn.Module):
    def __init__(self, nz: int, widths: list[int], channels: int, start: int = 4):
        super().__init__()
        self.width, self.start = widths[0], start
        self.dense = EqualLinear(nz, widths[0] * start * start, gain=math.sqrt(2) / 4)
        self.conv4 = EqualConv2d(widths[0], widths[0], 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(a, b, 3), EqualConv2d(b, b, 3)])
            for a, b in itertools.pairwise(widths)
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(w, channels, 1, gain=1.0) for w in widths)

    def block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Features at twice the resolution of ``h``."""
        h = _upsample(h)
        for conv in cast(nn.ModuleList, self.blocks[i]):
            h = pixel_norm(_lrelu(conv(h)))
        return h

    def forward(self, z: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        """Images at start * 2**stage pixels (linear output); the newest block fades in by
        alpha."""
        s = self.start
        h = pixel_norm(_lrelu(self.dense(pixel_norm(z)).view(-1, self.width, s, s)))
        h = pixel_norm(_lrelu(self.conv4(h)))
        for i in range(stage - 1):
            h = self.block(i, h)
        if stage == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[stage](self.block(stage - 1, h))
        if alpha >= 1:
            return new
        return torch.lerp(_upsample(self.to_rgb[stage - 1](h)), new, alpha)


class Discriminator(nn.Module):
    def __init__(self, widths: list[int], channels: int, group_size: int, start: int = 4):
        super().__init__()
        self.group_size = group_size
        self.from_rgb = nn.ModuleList(EqualConv2d(channels, w, 1) for w in widths)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(b, b, 3), EqualConv2d(b, a, 3)])
            for a, b in itertools.pairwise(widths)
        )
        w = widths[0]
        self.conv3 = EqualConv2d(w + 1, w, 3)
        # the reference's dense layer over the 4x4 map (start x start here)
        self.conv4 = EqualConv2d(w, w, start)
        self.out = EqualLinear(w, 1, gain=1.0)

    def block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Features at half the resolution of ``h``."""
        for conv in cast(nn.ModuleList, self.blocks[i]):
            h = _lrelu(conv(h))
        return F.avg_pool2d(h, 2)

    def forward(self, x: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        h = _lrelu(self.from_rgb[stage](x))
        if stage > 0:
            h = self.block(stage - 1, h)
            if alpha < 1:
                old = _lrelu(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(old, h, alpha)
            for i in reversed(range(stage - 1)):
                h = self.block(i, h)
        h = _lrelu(self.conv3(minibatch_stddev(h, self.group_size)))
        h = _lrelu(self.conv4(h)).flatten(1)
        return self.out(h).view(-1)


class FullSize(nn.Module):
    """The exported generator: ``z -> image`` at the full image size, clamped to [-1, 1]."""

    def __init__(self, generator: nn.Module, stage: int, alpha: float, size: int):
        super().__init__()
        self.generator, self.stage, self.alpha, self.size = generator, stage, alpha, size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.generator(z, self.stage, self.alpha)
        if x.shape[-1] < self.size:
            x = _upsample(x, self.size // x.shape[-1])
        return x.clamp(-1, 1)


class PGGAN(LatentModel):
    """Settings: PGGANConfig in zoo/plugins/__init__.py."""

    def __init__(self, config, spec: ImageSpec):
        super().__init__(config, spec)
        c = config
        self.start, self.stages = growth(spec.size)
        resolutions = [self.start << s for s in range(self.stages)]
        widths = [min(c["fmap_max"], c["fmap_base"] // r) for r in resolutions]
        if min(widths) < 1:
            raise UsageError(f"fmap_base {c['fmap_base']} leaves no channels at {spec.size}px")
        self.minibatch = self._minibatch(c["minibatch"], resolutions)
        self.generator = Generator(c["nz"], widths, spec.channels, self.start)
        self.discriminator = Discriminator(widths, spec.channels, c["mbstd_group"], self.start)
        self.enable_ema()
        self.phases = self._phases()
        self.stage, self.alpha = self.schedule(0)

    @staticmethod
    def _minibatch(given: dict, resolutions: list[int]) -> list[int | None]:
        """Batch size per stage; None takes the whole batch the trainer draws."""
        bad = [k for k in given if str(k) not in map(str, resolutions)]
        if bad:
            raise UsageError(
                f"minibatch names resolution {bad[0]}, which this model does not train at; "
                f"resolutions: {', '.join(map(str, resolutions))}"
            )
        sizes = {int(k): v for k, v in given.items()}
        if any(not isinstance(v, int) or v < 1 for v in sizes.values()):
            raise UsageError(f"minibatch sizes must be positive integers (got {given})")
        return [sizes.get(r) for r in resolutions]

    def _phases(self) -> list[tuple[int, bool, int]]:
        """(stage, fading, steps): stabilise 4x4, then fade in and stabilise each next stage.
        The last phase goes on past its length until the run ends."""
        fade, stable = self.config["fade_steps"], self.config["stable_steps"]
        if fade < 1 or stable < 1:
            raise UsageError(f"fade_steps and stable_steps must be positive (got {fade}, {stable})")
        phases = [(0, False, stable)]
        for s in range(1, self.stages):
            phases += [(s, True, fade), (s, False, stable)]
        return phases

    def schedule(self, step: int) -> tuple[int, float]:
        """(stage, alpha) at ``step``: stage s trains at start * 2**s pixels; alpha < 1 fades
        in."""
        start = 0
        for stage, fading, steps in self.phases:
            if step < start + steps:
                return stage, (step - start) / steps if fading else 1.0
            start += steps
        return self.stages - 1, 1.0

    def on_load(self, step: int) -> None:
        self.stage, self.alpha = self.schedule(step)

    def configure_optimizers(self):
        c = self.config
        kw = {"lr": c["lr"], "betas": (c["beta1"], c["beta2"]), "eps": c["eps"]}
        return {
            "generator": adam(self.generator.parameters(), **kw),
            "discriminator": adam(self.discriminator.parameters(), **kw),
        }

    def reals(self, images: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        """Real images as D sees them at a stage: avg-pooled, and blended while fading in."""
        factor = images.shape[-1] // (self.start << stage)
        x = F.avg_pool2d(images, factor) if factor > 1 else images
        if alpha < 1:
            x = torch.lerp(_upsample(F.avg_pool2d(x, 2)), x, alpha)
        return x

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        c, opt = self.config, self.optimizers
        stage, alpha = self.schedule(step)
        shards = batch.noise.ranks  # minibatch sizes are the whole job's
        n = (self.minibatch[stage] or 0) // shards or len(batch.images)
        if n > len(batch.images):
            raise UsageError(
                f"minibatch at {self.start << stage}px is {n * shards} but the run's batch_size "
                f"is {len(batch.images) * shards}; raise batch_size to at least {n * shards}"
            )
        real = self.reals(batch.images[:n], stage, alpha)
        d, g = self.discriminator, self.generator
        fake = g(batch.noise.randn(n, c["nz"], device=real.device), stage, alpha)

        def critic(x: torch.Tensor) -> torch.Tensor:
            return d(x, stage, alpha)

        mix = batch.noise.rand(n, 1, 1, 1, device=real.device)  # the penalty's x_hat mixing
        d_loss, logs = self.discriminator_loss(critic, real, fake, step, mix)
        opt["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        opt["discriminator"].step()

        d.requires_grad_(False)  # the G step needs no D weight gradients
        d_out = critic(fake)
        g_loss = -d_out.mean() if c["loss"] == "wgan-gp" else OBJECTIVES[c["loss"]].generator(d_out)
        opt["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        opt["generator"].step()
        d.requires_grad_(True)

        self.update_ema(step)
        self.on_load(step + 1)  # inference shows the model as of the steps done
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            **{k: v.detach() for k, v in logs.items()},
            # 0 at 4x4, k once the k-th doubling has faded in: progress at a glance in the logs
            "growth": torch.tensor(stage - 1 + alpha if stage else 0.0),
        }

    def discriminator_loss(
        self, critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
        fake: torch.Tensor, step: int, mix: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
        """D's loss and what to log: WGAN-GP with the drift term (the paper), or another
        objective with R1 on the reals; the penalty applies every ``penalty_every`` steps at
        that many times the weight (StyleGAN2's lazy regularisation)."""
        c = self.config
        d_real, d_fake = critic(real), critic(fake.detach())
        every = c["penalty_every"]
        lazy = step % every == 0  # the penalty's step, when it is lazy
        if c["loss"] == "wgan-gp":
            wasserstein = wasserstein_estimate(d_real, d_fake)
            loss = -wasserstein + c["drift"] * d_real.pow(2).mean()
            # gp is logged as every * penalty on its steps and 0 between them, so its running
            # mean in metrics.jsonl is still the mean penalty
            gp = every * gradient_penalty(critic, real, fake, mix) if lazy else d_real.new_zeros(())
            return loss + c["gp_lambda"] * gp, {"wasserstein": wasserstein, "gp": gp}
        objective = OBJECTIVES[c["loss"]]
        loss = objective.discriminator(d_real, d_fake, 1.0)
        if c["r1_gamma"] > 0 and lazy:
            loss = loss + c["r1_gamma"] / 2 * every * r1_penalty(critic, real)
        report = {
            "d_real": objective.report(d_real).mean(),
            "d_fake": objective.report(d_fake).mean(),
        }
        return loss, report

    def graphs(self) -> dict[str, Graph]:
        graphs = super().graphs()
        g = graphs["generator"]
        g.module = FullSize(self.generator_ema, self.stage, self.alpha, self.spec.size).eval()
        res, size = self.start << self.stage, self.spec.size
        g.metadata["resolution"] = f"{res}x{res}"
        if res < size or self.alpha < 1:
            g.metadata["note"] = (
                f"training stopped at {res}x{res} (fade-in alpha {self.alpha:.3f}) before "
                f"reaching {size}x{size}; the output is nearest-upsampled to {size}x{size}"
            )
        return graphs
