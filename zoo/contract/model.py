"""The contract a family implements: subclass `GenerativeModel` in one module.

A family module holds its networks, losses and train step. zoo's core never imports a family
by name: it loads the class a `FamilySpec` points to and talks to it through these methods.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from zoo.contract.imagesets import ImageSet
from zoo.contract.metadata import ImageSpec
from zoo.contract.metadata import ModelInfo as ModelInfo  # re-exported: families and exporters
from zoo.errors import UsageError


class Noise:
    """A step's random draws, the same for every image whatever the number of processes:
    a draw of ``n`` rows on rank r of N (``shard = (r, N)``) is rows r*n .. (r+1)*n of one
    draw of N*n rows.
    Without a seed (a Batch built by hand) it draws from torch's global generator."""

    def __init__(
        self,
        seed: int | None = None,
        step: int = 0,
        shard: tuple[int, int] = (0, 1),
        device: torch.device | None = None,
    ):
        self.rank, self.ranks = shard
        self.generator = None
        if seed is not None:
            key = zlib.crc32(f"{seed}:{step}".encode())
            self.generator = torch.Generator(device or "cpu").manual_seed(key)

    def _draw(self, fn, n: int, shape: tuple[int, ...], device) -> torch.Tensor:
        if self.generator is None:
            return fn(n, *shape, device=device)
        rows = n * self.ranks
        full = fn(rows, *shape, generator=self.generator, device=self.generator.device)
        return full[self.rank * n : (self.rank + 1) * n].to(device)

    def randn(self, n: int, *shape: int, device=None) -> torch.Tensor:
        """Standard normal, ``n`` rows (this rank's images) of ``shape``."""
        return self._draw(torch.randn, n, shape, device)

    def rand(self, n: int, *shape: int, device=None) -> torch.Tensor:
        """Uniform on [0, 1), ``n`` rows of ``shape``."""
        return self._draw(torch.rand, n, shape, device)


class TorchDraws:
    """torch's own draws from a seed (or a generator), in the NumPy shapes the samplers ask
    for (`zoo.base.torch_random.Draws`), so the torch path draws exactly what `zoo sample
    --seed S` draws and `zoo.base.torch_random` mirrors."""

    def __init__(self, seed: int | torch.Generator):
        gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
        self.generator = gen

    def randn(self, *shape: int) -> np.ndarray:
        return torch.randn(*shape, generator=self.generator).numpy()

    def randint(self, high: int, n: int) -> np.ndarray:
        return torch.randint(high, (n,), generator=self.generator).numpy()


@dataclass
class Batch:
    """One training batch: images in [-1, 1], labels where the data has them, the second
    domain's images for unpaired translation, and ``noise``, where a train step draws its
    latent vectors (``batch.noise.randn(n, nz)``) so that a run split over several processes
    draws what one process would (zoo/training/distributed.py)."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    images_b: torch.Tensor | None = None
    noise: Noise = field(default_factory=Noise)


@dataclass
class Graph:
    """An inference network as it is exported: named inputs and outputs, dynamic batch.

    ``example`` holds example inputs (batch >= 2, in ``forward`` order); validation runs the
    exported graph at batch sizes 1 and 7 and compares with ``module`` within ``atol``.
    """

    module: nn.Module
    example: dict[str, torch.Tensor]
    outputs: list[str]
    metadata: dict[str, str] = field(default_factory=dict)
    dynamic_size: bool = False  # spatial size may vary too (image-to-image networks)
    size_multiple: int = 1
    atol: float = 1e-4


@dataclass
class SampleRequest:
    """What `zoo sample` asks for. Random draws come from ``generator`` (CPU) so that the
    PyTorch and ONNX runtimes see identical inputs for the same seed."""

    n: int
    generator: torch.Generator
    labels: torch.Tensor | None = None
    inputs: torch.Tensor | None = None  # images in [-1, 1] at the model's size
    options: dict[str, Any] = field(default_factory=dict)


class Runner(Protocol):
    """Runs a named graph in PyTorch or onnxruntime; inputs and outputs are CPU tensors."""

    def __call__(self, graph: str, **inputs: torch.Tensor) -> dict[str, torch.Tensor]: ...


class GenerativeModel(nn.Module):
    """Base class of every family.

    ``config`` is a dict of the family's settings, already checked against the schema its
    `zoo.FamilySpec` declares (keys, types, ranges, choices).

    Class attributes:
      conditional     samples take class labels; training data must have labels.
      domains         2 for unpaired translation between two data domains.
      takes_input     sampling transforms given images (`zoo sample --input`).
      inference       sub-modules needed for sampling and export (EMA copies where kept).

    Before training the core sets ``self.optimizers`` from `configure_optimizers` and
    ``self.total_steps`` to the run's length (for schedules such as a linear lr decay).
    """

    conditional: ClassVar[bool] = False
    domains: ClassVar[int] = 1
    takes_input: ClassVar[bool] = False
    inference: tuple[str, ...] = ("generator",)  # an instance may name its EMA copy

    def __init__(self, config: dict[str, Any], spec: ImageSpec):
        super().__init__()
        self.config = config
        self.spec = spec
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.total_steps = 0

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimisers; their state is checkpointed under these names."""
        raise NotImplementedError

    def batches_per_step(self, step: int) -> int:
        """How many mini-batches `train_step` gets at ``step``, concatenated along dim 0
        (WGAN's critic takes n_critic fresh batches per generator update)."""
        return 1

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step (all networks). Returns detached scalar losses to log."""
        raise NotImplementedError

    def graphs(self) -> dict[str, Graph]:
        """The inference networks, in eval mode, keyed by name ("generator", "decoder", ...)."""
        raise NotImplementedError

    def sample(self, request: SampleRequest, run: Runner) -> torch.Tensor:
        """Images in [-1, 1] for a request, computed only through ``run`` so that the same
        code samples in PyTorch and in onnxruntime."""
        raise NotImplementedError

    def encode_prior(self, images: torch.Tensor) -> torch.Tensor | None:
        """Optional: latents of the prior graph whose images are close to ``images`` (in
        [-1, 1]), e.g. through a VAE's encoder. `zoo invert` starts from them and refines;
        None (the default) has it search from random draws alone."""
        return None

    def check_request(self, request: SampleRequest) -> None:
        """Reject requests the family cannot serve, before anything runs. ``options`` are
        already checked against the family's declared sample options (`FamilySpec`)."""
        if request.labels is not None:
            if not self.conditional:
                raise UsageError(f"{type(self).__name__} is not conditional: drop --label")
            bad = request.labels[(request.labels < 0) | (request.labels >= self.spec.num_classes)]
            if len(bad):
                raise UsageError(
                    f"label {int(bad[0])} is out of range: this model has classes "
                    f"0..{self.spec.num_classes - 1}"
                )
        if request.inputs is not None and not self.takes_input:
            raise UsageError(f"{type(self).__name__} does not take --input")

    def preview(
        self, held_out: ImageSet, held_out_b: ImageSet | None, seed: int
    ) -> tuple[torch.Tensor, int]:
        """Images for the training preview grid, and how many go in a row.

        Fixed noise from ``seed``; one row per class for conditional families. Families that
        transform images override this to show held-out inputs next to their outputs.
        """
        generator = torch.Generator().manual_seed(seed)
        if self.conditional:
            per_class = 8
            labels = torch.arange(self.spec.num_classes).repeat_interleave(per_class)
            request = SampleRequest(len(labels), generator, labels=labels)
        else:
            per_class, request = 8, SampleRequest(64, generator)
        device = next(self.parameters()).device
        return self.sample(request, TorchRunner(self.graphs(), device)), per_class

    def inference_state(self) -> dict[str, torch.Tensor]:
        """The weights that sampling and export need (what the safetensors export holds)."""
        return {
            f"{name}.{key}": value
            for name in self.inference
            for key, value in getattr(self, name).state_dict().items()
        }

    def validate(self, held_out: ImageSet) -> dict[str, float]:
        """Metrics on the held-out split (e.g. a VAE's ELBO), logged with each checkpoint."""
        return {}

    def on_load(self, step: int) -> None:
        """Restore state that depends on the training step (e.g. a growth stage)."""


class TorchRunner:
    """Runs a model's graphs in PyTorch, in eval mode; with ``bf16`` under bf16 autocast
    (asked for by name: `--runtime torch-bf16`), its outputs float32 either way."""

    name = "torch"

    def __init__(self, graphs: dict[str, Graph], device: torch.device, bf16: bool = False):
        self.graphs, self.device, self.bf16 = graphs, device, bf16
        self.provider = f"torch{'-bf16' if bf16 else ''}:{device}"

    @torch.inference_mode()
    def __call__(self, graph: str, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        g = self.graphs[graph]
        args = [inputs[name].to(self.device) for name in g.example]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = g.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {name: t.float().cpu() for name, t in zip(g.outputs, out)}


def check_family_class(cls: Any, name: str) -> type[GenerativeModel]:
    """Validate what a FamilySpec target points to, naming what is missing."""
    from zoo.errors import ZooError

    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise ZooError(
            f"family {name!r}: target is not a zoo.contract.model.GenerativeModel subclass"
        )
    missing = [
        m
        for m in ("configure_optimizers", "train_step", "graphs", "sample")
        if getattr(cls, m) is getattr(GenerativeModel, m)
    ]
    if missing:
        raise ZooError(
            f"family {name!r} ({cls.__module__}) does not implement {', '.join(missing)}"
        )
    return cls
