"""Shuffled mini-batches from in-memory images, drawn on the training device with their own
generator, so that a resumed run continues with the same batches."""

from __future__ import annotations

from typing import Any

import torch

from zoo.contract.imagesets import ImageSet, to_float


class Batches:
    """Shuffled mini-batches drawn from in-memory images on the training device.

    Order comes from its own generator so that a resumed run continues with the same batches.
    With ``shard = (rank, ranks)`` each batch of ``batch_size`` is drawn as one process would
    and this rank keeps its ``batch_size / ranks`` images (zoo/training/distributed.py).
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        device: torch.device,
        seed: int,
        shard: tuple[int, int] = (0, 1),
    ):
        self.images = data.images.to(device)
        self.labels = data.labels.to(device) if data.labels is not None else None
        self.global_size = min(batch_size, len(data) - len(data) % shard[1])
        self.batch_size = self.global_size // shard[1]  # this rank's images per batch
        self.shard = shard
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(data), generator=self.generator)
        self.pos = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pos + self.global_size > len(self.order):
            self.order = torch.randperm(len(self.images), generator=self.generator)
            self.pos = 0
        first = self.pos + self.shard[0] * self.batch_size
        idx = self.order[first : first + self.batch_size].to(self.images.device)
        self.pos += self.global_size
        labels = self.labels[idx] if self.labels is not None else None
        return to_float(self.images[idx]), labels

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.pos = state["order"], int(state["pos"])
