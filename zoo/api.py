"""The Python API: everything the CLI does, as functions, over the layers below (a facade:
planning a run lives in `zoo.training.plan`, loading in `zoo.runtime.loading`, exporting in
`zoo.runtime.exporting`).

import zoo.api as zoo
samples = zoo.sample("dcgan-mnist", n=16, seed=0)   # pretrained; .images in [-1, 1]
path = zoo.interpolate("dcgan-mnist", 8, seeds=(1, 2))  # seed 1's image to seed 2's
model = zoo.load("dcgan-mnist").model                # the GenerativeModel, in eval mode
zoo.export("dcgan-mnist", "onnx", "dcgan.onnx")
zoo.train("dcgan-mnist", out="runs/mine")          # the catalogue's recipe, from scratch
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo import __version__
from zoo.contract.diffusion import describe, runner_network
from zoo.contract.model import ModelInfo, SampleRequest, TorchDraws
from zoo.data.sources import load_dataset
from zoo.errors import UsageError, ZooError
from zoo.judge.classifier import load_classifier
from zoo.registry.discovery import get_registry
from zoo.registry.recipes import list_families as list_families  # re-exported: the Python API
from zoo.registry.recipes import list_models as list_models
from zoo.registry.recipes import resolve
from zoo.runtime.devices import OnnxRunner, TorchRunner, resolve_device
from zoo.runtime.exporting import export_model as export_model
from zoo.runtime.exporting import onnx_files as onnx_files
from zoo.runtime.inversion import Inversion, invert_sampler
from zoo.runtime.inversion import invert as run_inversion
from zoo.runtime.latents import (
    Feed,
    LatentQuery,
    Prior,
    calls,
    feed_for,
    from_start,
    sampler_prior,
)
from zoo.runtime.loading import Loaded as Loaded
from zoo.runtime.loading import build as build
from zoo.runtime.loading import load as load
from zoo.store.sources import runs_dir
from zoo.training import distributed
from zoo.training.plan import plan_new, plan_resume
from zoo.training.precision import check_precision
from zoo.training.trainer import (
    Trainer,
    TrainResult,
    check_run_dir,
    claim_run_dir,
    clean_stale,
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
    ``precision`` is auto, fp32 or bf16 (`zoo.training.precision`); the run records the one
    it trained in. ``compile`` runs the networks through torch.compile
    (`zoo.training.trainer.compile_networks`): a choice of speed, not of model, so a run may
    be resumed with or without it.

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
        plan = plan_new(target, data, overrides, new_seed, check_precision(precision))
    s = plan.settings
    distributed.shard_size(s.batch_size, world, resumed=checkpoint is not None)
    dataset = load_dataset(plan.data, image_size=s.image_size, channels=s.channels)
    record = {"settings": s.to_dict(), "seed": plan.seed, "precision": plan.precision}
    if plan.precision_images_per_s is not None:
        record["precision_images_per_s"] = plan.precision_images_per_s
    info = ModelInfo(
        family=plan.family,
        config=plan.config,
        spec=dataset.spec,
        name=plan.name,
        data=plan.data,
        zoo_version=__version__,
        classes=dataset.classes,
        train=record,
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


RUNTIMES = ("auto", "torch", "torch-bf16", "onnx")


def pick_runtime(runtime: str, loaded: Loaded) -> str:
    """``auto``: onnxruntime for an .onnx file, PyTorch otherwise (``torch-bf16``: PyTorch
    under bf16 autocast, only when asked)."""
    if runtime not in RUNTIMES:
        raise UsageError(f"bad runtime {runtime!r}: use {', '.join(RUNTIMES)}")
    if runtime == "auto":
        return "onnx" if loaded.path.suffix == ".onnx" else "torch"
    return runtime


@dataclass
class Samples:
    """Images in [-1, 1] (N, C, H, W), the labels they were drawn for, and where they ran."""

    images: torch.Tensor
    labels: torch.Tensor | None
    provider: str
    nrow: int = 0  # images per row: a path's length (0: a square grid)


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
    truncation: float | None = None,
) -> Samples:
    """Sample from the PyTorch model or its ONNX export; same seed, same images.

    ``labels`` (conditional models) gives one label per image; ``inputs`` are images in
    [-1, 1] for families that transform images (reconstruction, translation); ``truncation``
    draws each latent coordinate from the normal truncated to [-psi, psi] (families with a
    prior graph; `zoo.runtime.latents.normal`).
    """
    if n <= 0:
        raise UsageError(f"-n must be positive (got {n})")
    if truncation is not None:
        if inputs is not None or options:
            raise UsageError("--truncation draws latents: drop --input and family options")
        query = LatentQuery(n=n, seeds=(seed,), labels=labels, truncation=truncation)
        return sample_latents(
            source, query, runtime=runtime, device=device, threads=threads, loaded=loaded
        )
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


def prior(loaded: Loaded) -> Prior:
    """The family's prior: what interpolation, walks, truncation and latents need. Its
    ``prior`` graph (`FamilySpec`, taking ``z`` and, conditional, ``labels``), or for a
    multi-step family the start x_T of its deterministic sampler, flattened."""
    family = get_registry().family(loaded.info.family, load=False)
    if family.multistep:
        description = describe(loaded.model.graphs()[family.multistep].metadata)
        if description is None:
            raise UsageError(f"{family.name}'s {family.multistep!r} graph describes no sampler")
        s = loaded.info.spec
        found = sampler_prior(family.multistep, description, (s.channels, s.size, s.size))
        if found is None:
            raise UsageError(
                f"{family.name}'s default sampler adds noise at every step, so no latent "
                "fixes its images: latent tools need a deterministic one (eta 0)"
            )
        return found
    name = family.prior
    graph = loaded.model.graphs().get(name) if name else None
    z = graph.example.get("z") if graph else None
    if graph is None or z is None or z.dim() != 2 or set(graph.example) - {"z", "labels"}:
        raise UsageError(
            f"{family.name} declares no prior graph of latents z: interpolation, walks, "
            "truncation and latents files need one (docs/plugins.md, 'Latent tools')"
        )
    classes = loaded.info.spec.num_classes if "labels" in graph.example else 0
    return Prior(name, int(z.shape[1]), classes)


def _render(spec: Prior, runner: Any) -> Callable[[Feed], torch.Tensor]:
    """The images of a feed: through the prior graph, or the multi-step sampler from x_T."""
    if spec.sampler is not None:
        network = runner_network(runner, spec.graph)
        return lambda feed: torch.from_numpy(from_start(spec, network, feed))

    def through_graph(feed: Feed) -> torch.Tensor:
        return runner(spec.graph, **{k: torch.from_numpy(v) for k, v in feed.items()})["image"]

    return through_graph


def sample_latents(
    source: str | Path,
    query: LatentQuery,
    *,
    runtime: str = "auto",
    device: str = "auto",
    threads: int = 0,
    loaded: Loaded | None = None,
) -> Samples:
    """The images of a `LatentQuery` through the family's prior graph: truncated draws, an
    interpolation, a walk or a file of latents. A path's images are run one at a time, as
    ``-n 1`` runs them, so its ends are exactly the seeds' own images."""
    query.check()
    dev = resolve_device(device)
    loaded = loaded or load(source, "cpu")
    spec = prior(loaded)
    feed, nrow = feed_for(spec, query, TorchDraws)
    runner = _runner(loaded, pick_runtime(runtime, loaded), dev, threads)
    render = _render(spec, runner)
    with torch.inference_mode():
        parts = [render(part) for part in calls(feed, query.path)]
    labels = torch.from_numpy(feed["labels"]) if "labels" in feed else None
    return Samples(torch.cat(parts), labels, runner.provider, nrow)


def interpolate(
    source: str | Path,
    steps: int,
    *,
    seeds: tuple[int, int] = (0, 1),
    labels: list[int] | None = None,
    latents: str | Path | None = None,
    truncation: float | None = None,
    **run: Any,
) -> Samples:
    """``steps`` images from seed A's image to seed B's along the great circle between their
    latents (or between each pair of rows of a ``latents`` file); ``labels``: one class for
    the path, or one per end. ``run``: runtime, device, threads, loaded."""
    path = Path(latents) if latents is not None else None
    query = LatentQuery(seeds=tuple(seeds), labels=labels, truncation=truncation,
                        interpolate=steps, latents=path)  # fmt: skip
    return sample_latents(source, query, **run)


def walk(
    source: str | Path,
    steps: int,
    *,
    seed: int = 0,
    label: int | None = None,
    truncation: float | None = None,
    **run: Any,
) -> Samples:
    """A smooth closed path of ``steps`` images through the prior, starting at the image of
    ``zoo sample -n 1 --seed SEED``."""
    labels = None if label is None else [label]
    query = LatentQuery(seeds=(seed,), labels=labels, truncation=truncation, walk=steps)
    return sample_latents(source, query, **run)


def invert(
    source: str | Path,
    images: torch.Tensor,
    *,
    steps: int = 200,
    restarts: int = 4,
    seed: int = 0,
    labels: list[int] | None = None,
    perceptual: bool = True,
    device: str = "auto",
    loaded: Loaded | None = None,
) -> Inversion:
    """The latents (and classes) whose images are closest to ``images`` (N, C, H, W in
    [-1, 1], at the model's size): by Adam through the prior graph from ``restarts`` starts,
    in pixels and (``perceptual``) in zoo's digit classifier's features (a multi-step family
    runs its sampler backwards instead, and ``steps``, ``restarts``, ``seed`` and
    ``perceptual`` do not apply: `zoo.runtime.inversion.invert_sampler`); a family that
    encodes (the VAE) gives the first start. ``.z`` and ``.labels`` render with
    `sample_latents` / ``zoo sample --latents``. See `zoo.runtime.inversion`."""
    loaded = loaded or load(source, "cpu")
    spec, info = prior(loaded), loaded.info.spec
    if images.dim() != 4 or tuple(images.shape[1:]) != (info.channels, info.size, info.size):
        raise UsageError(
            f"images must be N x {info.channels} x {info.size} x {info.size} for this model "
            f"(got {tuple(images.shape)})"
        )
    if loaded.path.suffix == ".onnx":
        raise UsageError(f"{loaded.path}: inversion needs gradients; invert its weights or run")
    dev = resolve_device(device)
    model = loaded.model.to(dev).eval()
    targets = images.to(dev, torch.float32)
    given = None if labels is None else torch.tensor(labels, dtype=torch.int64, device=dev)
    if given is not None and (len(given) != len(targets) or not spec.conditional):
        raise UsageError("--label gives one class per image, for conditional models")
    if spec.sampler is not None:
        network = runner_network(TorchRunner(model.graphs(), dev), spec.graph)
        return invert_sampler(spec.sampler, network, targets, given)
    network = model.graphs()[spec.graph].module.requires_grad_(False)
    features = load_classifier().feature_map if perceptual else None
    start = model.encode_prior(targets)
    return run_inversion(network, spec, targets, steps=steps, restarts=restarts, seed=seed,
                         labels=given, features=features, start=start)  # fmt: skip


def _runner(loaded: Loaded, runtime: str, dev: torch.device, threads: int) -> Any:
    if runtime == "onnx":
        return OnnxRunner(onnx_files(loaded), str(dev), threads)
    if loaded.path.suffix == ".onnx":
        raise UsageError(f"{loaded.path} is an ONNX file: sample it with --runtime onnx")
    return TorchRunner(loaded.model.to(dev).graphs(), dev, bf16=runtime == "torch-bf16")


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
