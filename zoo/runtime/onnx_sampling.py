"""Sampling an exported model in onnxruntime without importing torch.

`zoo sample FILE.onnx` comes here when the file's family declares the graph its samples come
from (``prior`` in `zoo.contract.specs.FamilySpec`), the samples need nothing but a seed (and
labels), and the CPU runs them. The latent vectors come from `zoo.base.torch_random`, which mirrors
torch's draws, so the images are those of the torch path for the same seed, to float rounding.
Anything else (images to translate or reconstruct, family options, a GPU) goes through torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.base.torch_random import MIN_NORMALS, TorchGenerator
from zoo.contract.metadata import ModelInfo
from zoo.errors import UsageError
from zoo.store.exports import (
    check_finite_outputs,
    graph_files,
    onnx_metadata,
    open_session,
    read_onnx_info,
)

MAX_LATENT = 1 << 16  # values per latent vector: far above any zoo model, far below a bomb


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible, asked of the driver rather than of torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


@dataclass
class PriorSampler:
    """The ``prior`` graph of an exported model in an onnxruntime session."""

    info: ModelInfo
    session: Any
    latent: int

    @classmethod
    def open(cls, path: Path, threads: int = 0) -> PriorSampler | None:
        """None when the family declares no prior graph or the file's graph does not take
        a ``z`` of a fixed size: the caller samples through torch then."""
        from zoo.registry.discovery import get_registry

        meta = onnx_metadata(path)  # read once for the info and the graph table
        info = read_onnx_info(path, meta)
        prior = get_registry().family(info.family, load=False).prior
        if not prior:
            return None
        files = graph_files(path, meta)
        if prior not in files:
            raise UsageError(f"{path} has no {prior!r} graph, which {info.family} samples from")
        session = open_session(files[prior], None, threads)
        inputs = {i.name: i.shape for i in session.get_inputs()}
        latent = inputs.get("z", [None, None])[1]
        if not isinstance(latent, int) or set(inputs) - {"z", "labels"}:
            return None
        if not 0 < latent <= MAX_LATENT:
            raise UsageError(
                f"{path}: its latent input is {latent:,} wide, beyond the {MAX_LATENT:,} zoo "
                "samples; the file is not a generator zoo can sample"
            )
        if "image" not in {o.name for o in session.get_outputs()}:
            raise UsageError(f"{path}: its {prior!r} graph has no 'image' output to save")
        if "labels" in inputs and info.spec.num_classes < 1:
            raise UsageError(f"{path} takes labels but its metadata declares no classes")
        return cls(info, session, latent)

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def sample(
        self, n: int, seed: int, labels: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``n`` images (float32 NCHW in [-1, 1]) and the labels asked for; None when torch
        would draw ``z`` by another method (fewer than 16 values)."""
        conditional = any(i.name == "labels" for i in self.session.get_inputs())
        feed = prior_feed(self.info, self.latent, conditional, n, seed, labels)
        if feed is None:
            return None
        (images,) = self.session.run(["image"], feed)
        check_finite_outputs({"image": images}, "prior")
        return images, (np.asarray(labels, np.int64) if labels else None)


def prior_feed(
    info: ModelInfo,
    latent: int,
    conditional: bool,
    n: int,
    seed: int,
    labels: list[int] | None = None,
) -> dict[str, np.ndarray] | None:
    """The prior graph's inputs for ``n`` images from ``seed``: ``z`` as torch.randn of a
    generator seeded with it draws, then (conditional, no labels given) ``labels`` as its
    torch.randint; None when torch would draw ``z`` by another method (fewer than 16
    values)."""
    if n * latent < MIN_NORMALS:
        return None
    if labels and not conditional:
        raise UsageError(f"{info.family} is not conditional: drop --label")
    if labels is not None and len(labels) != n:
        raise UsageError(f"got {len(labels)} labels for {n} images")
    generator = TorchGenerator(seed)
    feed = {"z": generator.randn(n, latent)}
    if conditional:
        given = np.asarray(labels, np.int64) if labels else None
        feed["labels"] = given if given is not None else generator.randint(info.spec.num_classes, n)
    return feed


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points from ``a`` to ``b`` (rows of latents) along the great circle between
    them, scaled from one's norm to the other's: the path Gaussian latents keep their typical
    norm on (a straight line dips towards the origin, where samples are atypical)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    cos = float(np.clip(a64 @ b64 / max(na * nb, 1e-12), -1.0, 1.0))
    angle = np.arccos(cos)
    if angle < 1e-6:
        mixed = (1 - t) * a64 + t * b64
    else:
        ua, ub = a64 / max(na, 1e-12), b64 / max(nb, 1e-12)
        direction = (np.sin((1 - t) * angle) * ua + np.sin(t * angle) * ub) / np.sin(angle)
        mixed = direction * ((1 - t) * na + t * nb)
    mixed[0], mixed[-1] = a64, b64  # the ends exactly
    return mixed.astype(a.dtype).reshape(steps, *a.shape[1:])


def parse_labels(values: tuple[str, ...], num_classes: int) -> list[int]:
    """``("7",)``, ``("0,1,2",)`` or ``("all",)`` -> class indices."""
    if num_classes == 0:
        raise UsageError("this model has no classes: drop --label")
    labels: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part == "all":
                labels += range(num_classes)
            elif part.lstrip("-").isdigit():
                label = int(part)
                if not 0 <= label < num_classes:
                    raise UsageError(
                        f"label {part[:20]} is out of range: this model has classes "
                        f"0..{num_classes - 1}"
                    )
                labels.append(label)
            else:
                raise UsageError(f"bad --label {part!r}: use integers, a comma list or 'all'")
    return labels
