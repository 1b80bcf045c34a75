"""Diffusion (Ho et al. 2020, DDPM) and flow matching (Lipman et al. 2023; Liu et al. 2023)
with one small UNet, sampled by zoo's multi-step samplers (zoo.contract.diffusion).

Network: a UNet in the manner of DDPM's (Ho et al. 2020; its PyTorch ports): a sinusoidal
embedding of the time through a two-layer MLP, residual blocks of GroupNorm, SiLU and 3x3
convolutions with the embedding added between them, self-attention at the lowest resolution,
stride-2 convolutions down and nearest-neighbour up-sampling with skip connections. A
class-conditional model adds a learned class embedding to the time embedding; during
training the label is replaced by the null class with probability ``label_dropout``, so the
same network predicts without a class and samples with classifier-free guidance (Ho &
Salimans 2022).

Objectives (``objective``): ``epsilon``, DDPM's simple loss ||eps - eps_theta(x_t, t)||^2 with
t uniform over T steps and a ``linear`` (Ho et al.) or ``cosine`` (Nichol & Dhariwal 2021)
schedule; ``velocity``, flow matching / rectified flow, x_t = (1 - t) x_0 + t eps with t
uniform on [0, 1] and target v = eps - x_0. Samplers: DDIM (Song et al. 2021) with eta, DDPM
ancestral, Euler and Heun, on any number of steps. Samples come from an EMA of the weights
(decay ``ema_decay``, ramped as for the GANs: zoo/contract/latent.py).

Departures: the UNet is far smaller than DDPM's 35.7M-parameter CIFAR network (two
resolutions below the image, ``width`` 32 by default, one residual block per level) and
trains with a constant Adam rate, so a recipe fits the 2-core CPU budget; the time is given
to the network in (0, 1] (i / T for DDPM), embedded at 1,000 times that scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zoo.contract.blocks import adam
from zoo.contract.diffusion import META_KEY, Diffusion, runner_network
from zoo.contract.diffusion import sample as run_sampler
from zoo.contract.latent import LatentModel
from zoo.contract.model import Batch, Graph, Runner, SampleRequest, TorchDraws
from zoo.errors import UsageError


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoids of 1000 t (Vaswani et al. 2017, as DDPM embeds steps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = 1000 * t[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    """Single-head self-attention over the positions of a feature map, residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv, self.out = nn.Conv2d(channels, 3 * channels, 1), nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).chunk(3, dim=1)  # (n, c, hw) each
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (n, hw, hw)
        return x + self.out((v @ weights.transpose(1, 2)).view(n, c, h, w))


class UNet(nn.Module):
    """eps_theta or v_theta (x, t[, labels]) at the image's size, which must halve evenly
    ``len(mults) - 1`` times (28 -> 14 -> 7)."""

    def __init__(self, channels: int, width: int, mults: list[int], num_classes: int):
        super().__init__()
        emb, groups = 4 * width, min(8, width)
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, emb), nn.SiLU(), nn.Linear(emb, emb))
        # the null class (num_classes) is the unconditional prediction
        self.classes = nn.Embedding(num_classes + 1, emb) if num_classes else None
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        widths = [width * m for m in mults]
        self.down, self.pool = nn.ModuleList(), nn.ModuleList()
        cin = width
        for i, cout in enumerate(widths):
            self.down.append(ResBlock(cin, cout, emb, groups))
            self.pool.append(nn.Conv2d(cout, cout, 3, stride=2, padding=1)
                             if i < len(widths) - 1 else nn.Identity())  # fmt: skip
            cin = cout
        self.mid1 = ResBlock(cin, cin, emb, groups)
        self.attention = Attention(cin, groups)
        self.mid2 = ResBlock(cin, cin, emb, groups)
        self.up = nn.ModuleList()
        for cout in reversed(widths):
            self.up.append(ResBlock(cin + cout, cout, emb, groups))
            cin = cout
        self.head = nn.Sequential(nn.GroupNorm(groups, cin), nn.SiLU(),
                                  nn.Conv2d(cin, channels, 3, padding=1))  # fmt: skip

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        e = self.time(time_embedding(t, self.width))
        if self.classes is not None and labels is not None:
            e = e + self.classes(labels)
        h = self.stem(x)
        skips = []
        for block, pool in zip(self.down, self.pool):
            h = block(h, e)
            skips.append(h)
            h = pool(h)
        h = self.mid2(self.attention(self.mid1(h, e)), e)
        for block in self.up:
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), e)
        return self.head(h)


class DiffusionModel(LatentModel):
    """Settings: DiffusionConfig in zoo/plugins/__init__.py. The EMA and its ramp are the
    latent models' (`LatentModel.enable_ema`); sampling is zoo's multi-step sampler."""

    inference = ("generator",)

    def __init__(self, config, spec):
        super().__init__(config, spec)
        c = config
        self.conditional = bool(c["conditional"])
        size = spec.size
        if size % (1 << (len(c["mults"]) - 1)):
            raise UsageError(
                f"image_size {size} does not halve {len(c['mults']) - 1} times: use a multiple "
                f"of {1 << (len(c['mults']) - 1)} or fewer mults"
            )
        classes = spec.num_classes if self.conditional else 0
        self.generator = UNet(spec.channels, c["width"], list(c["mults"]), classes)
        self.description = Diffusion(
            objective=c["objective"],
            schedule="flow" if c["objective"] == "velocity" else c["schedule"],
            timesteps=c["timesteps"],
            sampler=c["sampler"],
            steps=c["sample_steps"],
            guidance=c["guidance"] if self.conditional else 0.0,
            num_classes=classes,
        )
        if c["ema_decay"] > 0:
            self.enable_ema()

    def configure_optimizers(self):
        return {"generator": adam(self.generator.parameters(), self.config["lr"], (0.9, 0.999))}

    def losses(self, batch: Batch) -> torch.Tensor:
        """The objective's mean squared error on one batch, every draw from ``batch.noise``."""
        x0, d = batch.images, self.description
        n, device = len(x0), x0.device
        noise = batch.noise.randn(n, *x0.shape[1:], device=device)
        u = batch.noise.rand(n, device=device)
        if d.objective == "velocity":
            t = u
            xt = (1 - t)[:, None, None, None] * x0 + t[:, None, None, None] * noise
            target = noise - x0
        else:
            steps = (u * d.timesteps).long().clamp(max=d.timesteps - 1) + 1  # 1 .. T
            abar = torch.as_tensor(d.alpha_bar(), dtype=x0.dtype, device=device)[steps - 1]
            xt = (
                abar.sqrt()[:, None, None, None] * x0
                + (1 - abar).sqrt()[:, None, None, None] * noise
            )
            t, target = steps.to(x0.dtype) / d.timesteps, noise
        labels = None
        if self.conditional:
            assert batch.labels is not None  # the trainer refuses unlabelled data
            dropped = batch.noise.rand(n, device=device) < self.config["label_dropout"]
            labels = torch.where(dropped, torch.full_like(batch.labels, d.null_label), batch.labels)
        return F.mse_loss(self.generator(xt, t, labels), target)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        loss = self.losses(batch)
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if hasattr(self, "generator_ema"):
            self.update_ema(step)
        return {"loss": loss.detach()}

    def graphs(self) -> dict[str, Graph]:
        network = getattr(self, self.inference[0]).eval()
        gen = torch.Generator().manual_seed(0)
        shape = (self.spec.channels, self.spec.size, self.spec.size)
        example = {"x": torch.randn(2, *shape, generator=gen), "t": torch.tensor([0.3, 0.9])}
        if self.conditional:
            example["labels"] = torch.tensor([0, self.description.null_label])
        meta = {META_KEY: self.description.to_json()}
        return {"denoiser": Graph(network, example, ["prediction"], meta, atol=5e-4)}

    def sample(self, request: SampleRequest, run: Runner) -> torch.Tensor:
        o = request.options
        network = runner_network(run)
        given = None if request.labels is None else request.labels.numpy()
        shape = (self.spec.channels, self.spec.size, self.spec.size)
        images, _ = run_sampler(
            self.description, network, TorchDraws(request.generator), request.n, shape,
            steps=o.get("steps"), sampler=o.get("sampler"), eta=o.get("eta"),
            guidance=o.get("guidance"), labels=given,
        )  # fmt: skip
        return torch.from_numpy(images)
