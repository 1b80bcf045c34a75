"""Sampling an exported model in onnxruntime without importing torch.

`zoo sample FILE.onnx` comes here when the file's family declares the graph its samples come
from (``prior`` in `zoo.contract.specs.FamilySpec`), the samples need nothing but latents (a
seed, truncation, a path or a file of them) and labels, and the CPU runs them. The latents
come from `zoo.runtime.latents` with `zoo.base.torch_random`, which mirrors torch's draws, so
the images are those of the torch path for the same seed, to float rounding. Anything else
(images to translate or reconstruct, family options, a GPU) goes through torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.base.torch_random import MIN_NORMALS, TorchGenerator
from zoo.contract.diffusion import Diffusion, describe
from zoo.contract.diffusion import sample as run_sampler
from zoo.contract.metadata import ModelInfo
from zoo.errors import UsageError
from zoo.runtime.latents import MAX_LATENT, Feed, Prior, calls, from_start, sampler_prior, seeded
from zoo.store.exports import (
    check_finite_outputs,
    graph_files,
    onnx_metadata,
    open_session,
    read_onnx_info,
)


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible, asked of the driver rather than of torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def declared_graph(path: Path, role: str) -> tuple[ModelInfo, str, Path] | None:
    """The file's info, and the name and file of the graph its family declares for ``role``
    (``prior`` or ``multistep`` in its FamilySpec); None when it declares none."""
    from zoo.registry.discovery import get_registry

    meta = onnx_metadata(path)  # read once for the info and the graph table
    info = read_onnx_info(path, meta)
    graph = getattr(get_registry().family(info.family, load=False), role)
    if not graph:
        return None
    files = graph_files(path, meta)
    if graph not in files:
        raise UsageError(f"{path} has no {graph!r} graph, which {info.family} samples from")
    return info, graph, files[graph]


@dataclass
class PriorSampler:
    """The ``prior`` graph of an exported model in an onnxruntime session."""

    info: ModelInfo
    session: Any
    prior: Prior

    @classmethod
    def open(cls, path: Path, threads: int = 0) -> PriorSampler | None:
        """None when the family declares no prior graph or the file's graph does not take
        a ``z`` of a fixed size: the caller samples through torch then."""
        found = declared_graph(path, "prior")
        if found is None:
            return None
        info, prior, file = found
        session = open_session(file, None, threads)
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
        classes = info.spec.num_classes if "labels" in inputs else 0
        if "labels" in inputs and classes < 1:
            raise UsageError(f"{path} takes labels but its metadata declares no classes")
        return cls(info, session, Prior(prior, latent, classes))

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def render(self, feed: Feed, one_by_one: bool = False) -> np.ndarray:
        """The images (float32 NCHW in [-1, 1]) of a feed; ``one_by_one`` runs each row
        alone, as ``-n 1`` would, so a path's ends are exactly those images."""
        parts = []
        for part in calls(feed, one_by_one):
            (images,) = self.session.run(["image"], part)
            check_finite_outputs({"image": images}, "prior")
            parts.append(images)
        return np.concatenate(parts)

    def sample(
        self,
        n: int,
        seed: int,
        labels: list[int] | None = None,
        truncation: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``n`` images (float32 NCHW in [-1, 1]) and the labels asked for; None when torch
        would draw ``z`` by another method (fewer than 16 values)."""
        feed = seeded(self.prior, seed, n, labels, truncation)
        if feed is None:
            return None
        return self.render(feed), (np.asarray(labels, np.int64) if labels else None)


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


@dataclass
class StepSampler:
    """The graph a multi-step family samples through (``multistep`` in its `FamilySpec`),
    in an onnxruntime session, with zoo's sampling loop around it (zoo.contract.diffusion)."""

    info: ModelInfo
    session: Any
    description: Diffusion
    graph: str = "denoiser"

    @classmethod
    def open(cls, path: Path, threads: int = 0) -> StepSampler | None:
        """None when the family samples in one step (or through torch)."""
        found = declared_graph(path, "multistep")
        if found is None:
            return None
        info, graph, file = found
        description = describe(onnx_metadata(file))
        if description is None:
            raise UsageError(f"{path}: its {graph!r} graph carries no diffusion description")
        return cls(info, open_session(file, None, threads), description, graph)

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        spec = self.info.spec
        return (spec.channels, spec.size, spec.size)

    @property
    def prior(self) -> Prior | None:
        """The latents the deterministic sampler starts from (x_T, flattened), as
        `zoo.api.prior` gives them; None where the default sampler adds noise."""
        return sampler_prior(self.graph, self.description, self.shape)

    def render(self, feed: Feed, one_by_one: bool = False) -> np.ndarray:
        """The images the sampler draws from the feed's x_T (``z``) and labels."""
        prior = self.prior
        assert prior is not None, "a sampler that adds noise has no latents to render"
        return np.concatenate([from_start(prior, self._network, part)
                               for part in calls(feed, one_by_one)])  # fmt: skip

    def _network(self, x: np.ndarray, t: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        feed = {"x": x, "t": t, **({"labels": classes} if classes is not None else {})}
        (out,) = self.session.run(["prediction"], feed)
        check_finite_outputs({"prediction": out}, self.graph)
        return np.asarray(out)

    def sample(
        self, n: int, seed: int, labels: list[int] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``n`` images and their labels as the torch path samples them; None where NumPy
        cannot mirror torch's draws (fewer than 16 values)."""
        o = options or {}
        if n * math.prod(self.shape) < MIN_NORMALS:
            return None
        given = np.asarray(labels, np.int64) if labels else None
        images, _ = run_sampler(
            self.description, self._network, TorchGenerator(seed), n, self.shape,
            steps=o.get("steps"),
            sampler=o.get("sampler"), eta=o.get("eta"), guidance=o.get("guidance"), labels=given,
        )  # fmt: skip
        return images, given
