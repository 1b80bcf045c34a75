"""Differentiable augmentation for GAN discriminators (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training").

With a few thousand training images a discriminator soon memorises them and stops teaching the
generator. Augmenting every image D sees, real and fake alike and in both players' steps, with
operations gradients pass through keeps D from memorising without changing what G learns to
produce (the augmentations are never applied to G's output outside D). The policies follow the
paper's reference code: ``translation`` shifts each image by up to 1/8 of its side (filling
with the background value), ``cutout`` blanks a random square of half the side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.errors import UsageError

POLICIES = ("translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> the policies, checked; ``""`` -> none."""
    policies = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise UsageError(f"unknown augment policy {bad[0]!r}: choose from {', '.join(POLICIES)}")
    return policies


def translation(x: torch.Tensor, ratio: float = 0.125, fill: float = -1.0) -> torch.Tensor:
    """Shift each image by a random whole number of pixels in [-ratio * side, ratio * side]."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy  # source row of each pixel
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx
    padded = F.pad(x, (sx, sx, sy, sy), value=fill)
    index = (rows + sy).clamp(0, h + 2 * sy - 1) * (w + 2 * sx) + (cols + sx).clamp(
        0, w + 2 * sx - 1
    )
    flat = padded.flatten(2)
    return flat.gather(2, index.flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1)).view_as(x)


def cutout(x: torch.Tensor, ratio: float = 0.5, fill: float = 0.0) -> torch.Tensor:
    """Blank one random square of ``ratio`` times the side per image (the paper fills with 0,
    the middle of [-1, 1])."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=x.device) - ch // 2
    cx = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= cy) & (rows < cy + ch) & (cols >= cx) & (cols < cx + cw)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, fill), x)


def augment(x: torch.Tensor, policies: tuple[str, ...]) -> torch.Tensor:
    """Apply ``policies`` in order; each draws its randomness per image."""
    for policy in policies:
        x = translation(x) if policy == "translation" else cutout(x)
    return x
