"""What a data source returns and a family trains on: uint8 image tensors in memory, split
into a train and a held-out set by one fixed, seeded rule. Part of the plugin contract."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from zoo.contract.metadata import ImageSpec

HELD_OUT = 0.2
SPLIT_SEED = 0


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor | None = None  # int64 (N,)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Dataset:
    """A train/held-out split of one domain, and of a second one for unpaired translation."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str] = field(default_factory=list)
    train_b: ImageSet | None = None
    test_b: ImageSet | None = None

    @property
    def spec(self) -> ImageSpec:
        _, c, h, _ = self.train.images.shape
        return ImageSpec(channels=c, size=h, num_classes=len(self.classes))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return images.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def held_out_split(images: np.ndarray, labels: np.ndarray | None) -> tuple[ImageSet, ImageSet]:
    """uint8 NCHW images (and their labels) as a train and a held-out set: the fixed, seeded
    split of every built-in data source, the same on every machine; for plugins' sources too."""
    n = len(images)
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, round(n * HELD_OUT)) if n > 1 else 0
    test, train = order[:n_test], order[n_test:]

    def subset(idx: np.ndarray) -> ImageSet:
        lab = torch.from_numpy(labels[idx].astype(np.int64)) if labels is not None else None
        return ImageSet(torch.from_numpy(np.ascontiguousarray(images[idx])), lab)

    return subset(train), subset(test)
