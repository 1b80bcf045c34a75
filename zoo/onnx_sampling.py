"""Sampling an exported model in onnxruntime without importing torch.

`zoo sample FILE.onnx` comes here when the file's family declares the graph its samples come
from (``prior`` in `zoo.specs.FamilySpec`), the samples need nothing but a seed (and labels),
and the CPU runs them. The latent vectors come from `zoo.torch_random`, which mirrors torch's
draws, so the images are those of the torch path for the same seed, to float rounding.
Anything else (images to translate or reconstruct, family options, a GPU) goes through torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.metadata import ModelInfo
from zoo.onnx_files import check_finite_outputs, graph_files, open_session, read_onnx_info
from zoo.torch_random import MIN_NORMALS, TorchGenerator

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
        from zoo.registry import get_registry

        info = read_onnx_info(path)
        prior = get_registry().family(info.family, load=False).prior
        if not prior:
            return None
        files = graph_files(path)
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
        if n * self.latent < MIN_NORMALS:
            return None
        conditional = any(i.name == "labels" for i in self.session.get_inputs())
        if labels and not conditional:
            raise UsageError(f"{self.info.family} is not conditional: drop --label")
        if labels is not None and len(labels) != n:
            raise UsageError(f"got {len(labels)} labels for {n} images")
        generator = TorchGenerator(seed)
        feed = {"z": generator.randn(n, self.latent)}
        given = np.asarray(labels, np.int64) if labels else None
        if conditional:
            classes = self.info.spec.num_classes
            feed["labels"] = given if given is not None else generator.randint(classes, n)
        (images,) = self.session.run(["image"], feed)
        check_finite_outputs({"image": images}, "prior")
        return images, given
