"""The Python API: everything the CLI does, as functions, over the layers below (a facade:
planning a run lives in `zoo.training.plan`, loading in `zoo.runtime.loading`, exporting in
`zoo.runtime.exporting`).

import zoo.api as zoo
samples = zoo.sample("dcgan-mnist", n=16, seed=0)   # pretrained; .images in [-1, 1]
model = zoo.load("dcgan-mnist").model                # the GenerativeModel, in eval mode
zoo.export("dcgan-mnist", "onnx", "dcgan.onnx")
zoo.train("dcgan-mnist", out="runs/mine")          # the catalogue's recipe, from scratch
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo import __version__
from zoo.contract.model import ModelInfo, SampleRequest
from zoo.data.sources import load_dataset
from zoo.errors import UsageError, ZooError
from zoo.registry.discovery import get_registry
from zoo.registry.recipes import list_families as list_families  # re-exported: the Python API
from zoo.registry.recipes import list_models as list_models
from zoo.registry.recipes import resolve
from zoo.runtime.devices import OnnxRunner, TorchRunner, resolve_device
from zoo.runtime.exporting import export_model as export_model
from zoo.runtime.exporting import onnx_files as onnx_files
from zoo.runtime.loading import Loaded as Loaded
from zoo.runtime.loading import build as build
from zoo.runtime.loading import load as load
from zoo.store.sources import runs_dir
from zoo.training import distributed
from zoo.training.plan import plan_new, plan_resume
from zoo.training.trainer import (
    Trainer,
    TrainResult,
    check_run_dir,
    claim_run_dir,
    clean_stale,
    resolve_precision,
    run_lock,
)


def train(
    target: str,
    *,
    data: str | None = None,
    out: str | Path | None = None,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    seed: int | None = None,
    resume: bool = False,
    precision: str = "auto",
    progress: bool = True,
    log: list[str] | None = None,
    compile: bool = False,
) -> TrainResult:
    """Train a catalogue model or a family into ``out`` (default runs/TARGET).

    ``overrides`` are `--set` values for training settings and hyperparameters; ``seed``
    defaults to 0. With ``resume`` the run continues from its last checkpoint, exactly as if
    never stopped. Everything is checked before anything is written, and the run directory
    is locked while it trains. ``log`` names loggers besides metrics.jsonl (`zoo.training.loggers`).
    ``compile`` runs the networks through torch.compile (`zoo.training.trainer.compile_networks`): a
    choice of speed, not of model, so a run may be resumed with or without it.

    Under torchrun (WORLD_SIZE > 1) each process trains its shard of every batch and rank 0
    writes the run (zoo/training/distributed.py); resuming across nodes needs the run directory on a
    file system they share.
    """
    overrides = dict(overrides or {})
    for key, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size)):
        if value is not None:
            overrides[key] = value
    for name in log or []:
        get_registry().logger(name)  # an unknown name fails before anything is written
    world = distributed.World.from_env()
    dev = resolve_device(device)
    if world.size > 1 and dev.type == "cuda":  # one GPU per process
        dev = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(dev)
    run_dir = Path(out) if out else runs_dir() / target
    if out is None:
        resolve(target, data)  # an unknown name fails here, before runs/NAME is created
    checkpoint = check_run_dir(run_dir, resume)
    if checkpoint is not None:
        plan = plan_resume(checkpoint, target, data, overrides, seed, precision)
    else:
        new_seed = 0 if seed is None else seed
        plan = plan_new(target, data, overrides, new_seed, resolve_precision(precision, dev))
    s = plan.settings
    distributed.shard_size(s.batch_size, world, resumed=checkpoint is not None)
    dataset = load_dataset(plan.data, image_size=s.image_size, channels=s.channels)
    info = ModelInfo(
        family=plan.family,
        config=plan.config,
        spec=dataset.spec,
        name=plan.name,
        data=plan.data,
        zoo_version=__version__,
        classes=dataset.classes,
        train={"settings": s.to_dict(), "seed": plan.seed, "precision": plan.precision},
    )
    torch.manual_seed(plan.seed)
    model = build(info)
    distributed.init(world, dev)
    try:
        if world.main:
            claim_run_dir(run_dir)
        with run_lock(run_dir) if world.main else contextlib.nullcontext():
            if world.main and check_run_dir(run_dir, resume) != checkpoint:
                raise ZooError(f"{run_dir} changed while zoo prepared to train it; run again")
            if world.main:
                clean_stale(run_dir)
            trainer = Trainer(
                model,
                info,
                dataset,
                s,
                run_dir,
                dev,
                plan.seed,
                plan.precision,
                progress,
                world,
                log or [],
                compile,
            )
            if checkpoint is not None:
                trainer.resume(checkpoint)
            return trainer.fit()
    finally:
        distributed.leave(world)


def pick_runtime(runtime: str, loaded: Loaded) -> str:
    """``auto``: onnxruntime for an .onnx file, PyTorch otherwise."""
    if runtime not in ("auto", "torch", "onnx"):
        raise UsageError(f"bad runtime {runtime!r}: use auto, torch or onnx")
    if runtime == "auto":
        return "onnx" if loaded.path.suffix == ".onnx" else "torch"
    return runtime


@dataclass
class Samples:
    """Images in [-1, 1] (N, C, H, W), the labels they were drawn for, and where they ran."""

    images: torch.Tensor
    labels: torch.Tensor | None
    provider: str


def sample(
    source: str | Path,
    n: int = 64,
    *,
    seed: int = 0,
    labels: list[int] | None = None,
    inputs: torch.Tensor | None = None,
    options: dict[str, Any] | None = None,
    runtime: str = "auto",
    device: str = "auto",
    threads: int = 0,
    loaded: Loaded | None = None,
) -> Samples:
    """Sample from the PyTorch model or its ONNX export; same seed, same images.

    ``labels`` (conditional models) gives one label per image; ``inputs`` are images in
    [-1, 1] for families that transform images (reconstruction, translation).
    """
    if n <= 0:
        raise UsageError(f"-n must be positive (got {n})")
    dev = resolve_device(device)
    loaded = loaded or load(source, "cpu")
    runtime = pick_runtime(runtime, loaded)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if labels else None
    if label_tensor is not None and len(label_tensor) != n:
        raise UsageError(f"got {len(label_tensor)} labels for {n} images")
    family = get_registry().family(loaded.info.family, load=False)
    request = SampleRequest(
        n,
        torch.Generator().manual_seed(seed),
        label_tensor,
        inputs,
        family.check_sample_options(dict(options or {})),
    )
    loaded.model.check_request(request)
    runner = _runner(loaded, runtime, dev, threads)
    with torch.inference_mode():
        images = loaded.model.sample(request, runner)
    return Samples(images, label_tensor, runner.provider)


def _runner(loaded: Loaded, runtime: str, dev: torch.device, threads: int) -> Any:
    if runtime == "onnx":
        return OnnxRunner(onnx_files(loaded), str(dev), threads)
    if loaded.path.suffix == ".onnx":
        raise UsageError(f"{loaded.path} is an ONNX file: sample it with --runtime onnx")
    return TorchRunner(loaded.model.to(dev).graphs(), dev)


def sample_stream(
    source: str | Path,
    n: int,
    *,
    seed: int = 0,
    chunk: int = 1024,
    runtime: str = "auto",
    device: str = "auto",
    threads: int = 0,
    loaded: Loaded | None = None,
) -> Iterator[Samples]:
    """``n`` images in chunks of ``chunk``, drawn from one seeded generator and one runner,
    so memory stays bounded by the chunk however large ``n`` is."""
    if n <= 0 or chunk <= 0:
        raise UsageError(f"-n must be positive (got {n})")
    dev = resolve_device(device)
    loaded = loaded or load(source, "cpu")
    runtime = pick_runtime(runtime, loaded)
    generator = torch.Generator().manual_seed(seed)
    loaded.model.check_request(SampleRequest(min(n, chunk), generator))
    runner = _runner(loaded, runtime, dev, threads)
    for start in range(0, n, chunk):
        request = SampleRequest(min(chunk, n - start), generator)
        with torch.inference_mode():
            yield Samples(loaded.model.sample(request, runner), None, runner.provider)


def export(source: str | Path, fmt: str, out: str | Path) -> list[Path]:
    """Write ``source`` in format ``fmt`` (see `zoo plugins`) and return the files written."""
    return export_model(load(source, "cpu"), fmt, out)
