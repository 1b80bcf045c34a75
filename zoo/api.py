"""The Python API: everything the CLI does, as functions.

import zoo.api as zoo
samples = zoo.sample("dcgan-mnist", n=16, seed=0)   # pretrained; .images in [-1, 1]
model = zoo.load("dcgan-mnist").model                # the GenerativeModel, in eval mode
zoo.export("dcgan-mnist", "onnx", "dcgan.onnx")
zoo.train("dcgan-mnist", out="runs/mine")          # the catalogue's recipe, from scratch
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo import __version__, distributed
from zoo.checkpoint import load_weights, read_info
from zoo.datasets import load_dataset
from zoo.errors import UsageError, ZooError
from zoo.files import replace_dir, staging_dir, write_text
from zoo.model import GenerativeModel, ModelInfo, SampleRequest, check_family_class
from zoo.recipes import list_families as list_families  # re-exported: the Python API
from zoo.recipes import list_models as list_models
from zoo.recipes import recipe_settings, resolve
from zoo.registry import PLUGIN_FAULTS, PluginError, get_registry
from zoo.runtime import OnnxRunner, TorchRunner, resolve_device
from zoo.settings import TrainSettings, check_values, merge
from zoo.sources import resolve as resolve_source
from zoo.sources import runs_dir
from zoo.specs import import_target
from zoo.training import (
    Trainer,
    TrainResult,
    check_run_dir,
    claim_run_dir,
    clean_stale,
    non_finite,
    resolve_precision,
    run_lock,
)


def family_class(name: str) -> type[GenerativeModel]:
    """The family's model class, imported on first use and checked against the contract."""
    spec = get_registry().family(name)
    return check_family_class(import_target(spec.target), name)


def build(info: ModelInfo) -> GenerativeModel:
    """A model from saved metadata: its config over the family's current defaults (a key
    added since the file was written keeps its default), checked against the schema."""
    cls = family_class(info.family)
    schema = get_registry().family(info.family).config
    config = merge(schema.defaults(), info.config, f"the config of {info.family}", schema)
    return cls(config, info.spec)


@dataclass
class _Plan:
    """A training run's resolved recipe, before the data is loaded."""

    name: str
    family: str
    data: str
    config: dict[str, Any]
    settings: TrainSettings
    seed: int
    precision: str


def _plan_new(
    target: str, data: str | None, overrides: dict[str, Any], seed: int, precision: str
) -> _Plan:
    recipe = resolve(target, data)
    settings, config = recipe_settings(recipe, overrides)
    return _Plan(
        recipe.name, recipe.family, recipe.data, config, TrainSettings(**settings), seed, precision
    )


def _plan_resume(
    checkpoint: Path,
    target: str,
    data: str | None,
    overrides: dict[str, Any],
    seed: int | None,
    precision: str,
) -> _Plan:
    """A resumed run keeps everything it started with; only its length may change, and only
    to train more. Anything else given is refused rather than silently ignored."""
    info, _ = read_info(checkpoint / "model.safetensors")
    run = checkpoint.parent.parent
    if target not in (info.name, info.family, str(run)):
        raise UsageError(f"--resume: {run} trains {info.name or info.family}, not {target}")
    record = info.train
    kinds = (("seed", int), ("precision", str), ("settings", dict))
    missing = [key for key, kind in kinds if not isinstance(record.get(key), kind)]
    if missing:
        raise UsageError(
            f"--resume: the checkpoint {checkpoint} records no valid {', '.join(missing)}: it "
            "was not written by zoo train; start a new run with --out DIR"
        )
    check_values(record["settings"], TrainSettings, f"the checkpoint {checkpoint}")
    run_seed, run_precision = record["seed"], record["precision"]
    if seed is not None and seed != run_seed:
        raise UsageError(f"--resume: {run} was started with --seed {run_seed}; drop --seed {seed}")
    if precision not in ("auto", run_precision):
        raise UsageError(f"--resume: {run} trains in {run_precision}; drop --precision {precision}")
    current = {**info.config, **record["settings"]}
    changed = {  # repeating the run's own values changes nothing, so it is no reason to refuse
        key
        for key, value in overrides.items()
        if key not in ("steps", "epochs") and not _same_value(current.get(key, _MISSING), value)
    }
    if changed or data not in (None, info.data):
        raise UsageError(
            f"--resume continues {run} with its own settings; only --steps/--epochs may change "
            f"(got {', '.join(sorted(changed)) or '--data'}); for other settings start a new run "
            "with --out DIR"
        )
    overrides = {k: v for k, v in overrides.items() if k in ("steps", "epochs")}
    _keep_hand_edits(run, info)
    settings = TrainSettings(**merge(record["settings"], overrides, "--set", TrainSettings))
    if settings.epochs <= 0 and settings.steps <= info.step:
        raise UsageError(
            f"--resume: {run} is already at step {info.step}; pass --steps above {info.step} "
            "to train further"
        )
    return _Plan(
        info.name,
        info.family,
        info.data,
        info.config,
        settings,
        info.train["seed"],
        info.train["precision"],
    )


_MISSING = object()


def _same_value(current: Any, given: Any) -> bool:
    if isinstance(current, list | tuple) and isinstance(given, list | tuple):
        return list(current) == list(given)
    widened = isinstance(current, float) and type(given) is int  # --set lr=1 for 1.0
    return (type(current) is type(given) or widened) and current == given


def _keep_hand_edits(run: Path, info: ModelInfo) -> None:
    """A run's settings live in its checkpoint, and config.json is rewritten from them: an
    edited config.json is kept aside and said, never silently ignored and overwritten."""
    config = run / "config.json"
    if not config.is_file():
        return
    try:
        written = json.loads(config.read_text(encoding="utf-8"))
        keys = ("family", "name", "data", "config")
        edited = any(written.get(k) != getattr(info, k) for k in keys)
        runs = ({k: v for k, v in t["settings"].items() if k not in ("steps", "epochs")}
                for t in (written["train"], info.train))  # fmt: skip
        edited = edited or next(runs) != next(runs)
        edited = edited or written["train"].get("seed") != info.train.get("seed")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        edited = True
    if edited:
        kept = config.with_name("config.edited.json")
        os.replace(config, kept)
        print(
            f"zoo: {config} was edited by hand; a run's settings live in its checkpoint, so the "
            f"edits have no effect (kept as {kept.name}); to change settings, start a new run "
            "with --set KEY=VALUE",
            file=sys.stderr,
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
    is locked while it trains. ``log`` names loggers besides metrics.jsonl (`zoo.loggers`).
    ``compile`` runs the networks through torch.compile (`zoo.training.compile_networks`): a
    choice of speed, not of model, so a run may be resumed with or without it.

    Under torchrun (WORLD_SIZE > 1) each process trains its shard of every batch and rank 0
    writes the run (zoo/distributed.py); resuming across nodes needs the run directory on a
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
        plan = _plan_resume(checkpoint, target, data, overrides, seed, precision)
    else:
        new_seed = 0 if seed is None else seed
        plan = _plan_new(target, data, overrides, new_seed, resolve_precision(precision, dev))
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


@dataclass
class Loaded:
    """A model rebuilt from a run, a checkpoint, an export or a catalogue name."""

    model: GenerativeModel
    info: ModelInfo
    path: Path  # the weights file, or the .onnx file for ONNX-only sources
    origin: str = ""  # where the weights came from (zoo.sources)


class _SkipInit(torch.overrides.TorchFunctionMode):
    """Skips parameter initialisation (torch.nn.init's functions and the random fills they
    call): on the meta device it fills nothing, and torch runs a meta ``normal_`` through its
    Python reference kernels, whose first call imports torch._dynamo (about 2 s that every
    load of a model paid)."""

    FILLS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_})

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        initialiser = getattr(func, "__module__", None) == "torch.nn.init"
        if func in self.FILLS or (initialiser and func.__name__.endswith("_")):
            return args[0] if args else kwargs["tensor"]  # in place: the tensor itself
        return func(*args, **kwargs)


def skeleton(info: ModelInfo) -> GenerativeModel:
    """The model ``info`` describes, built on the meta device: shapes without memory."""
    try:
        with torch.device("meta"), _SkipInit():
            return build(info)
    except (ValueError, TypeError, OverflowError, RuntimeError) as exc:
        raise UsageError(f"cannot build a {info.family} from this file's config ({exc})") from None


# A file's metadata must not make zoo allocate more than its own tensors account for: the
# networks it does not carry (a GAN's discriminator) may be this much larger, plus this margin.
SKELETON_RATIO, SKELETON_MARGIN = 8, 20_000_000


def _check_shapes(
    model: GenerativeModel, weights: dict[str, torch.Tensor], path: Path, family: str
) -> None:
    """Compare the meta-device model with the file before anything is allocated."""
    for key, expected in model.inference_state().items():
        if key not in weights:
            raise ZooError(f"{path} lacks weights the {family} model needs: {key}, ...")
        if tuple(weights[key].shape) != tuple(expected.shape):
            raise ZooError(
                f"weights in {path} do not match a {family} built from its config: {key} is "
                f"{tuple(weights[key].shape)} in the file, {tuple(expected.shape)} in the model"
            )
    carried = sum(t.numel() for t in weights.values())
    total = sum(t.numel() for t in model.state_dict().values())
    if total > SKELETON_RATIO * carried + SKELETON_MARGIN:
        raise ZooError(
            f"{path}: its config describes a model of {total:,} values but the file carries "
            f"{carried:,}; refusing to allocate it"
        )


def load(source: str | Path, device: str = "cpu") -> Loaded:
    """Rebuild the model from ``source`` (see `zoo.sources.resolve`: a catalogue name means
    its pretrained weights) with its inference weights, in eval mode."""
    resolved = resolve_source(source)
    path = resolved.path
    if path.suffix == ".onnx":
        from zoo.onnx_files import read_onnx_info

        # the graphs hold the weights: the model object only serves its sampling logic, so it
        # is never allocated (its metadata may describe anything)
        info = read_onnx_info(path)
        return Loaded(skeleton(info), info, path, resolved.origin)
    info, _ = read_info(path)
    weights = load_weights(path)
    _check_shapes(skeleton(info), weights, path, info.family)
    model = build(info)
    try:
        model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ZooError(
            f"weights in {path} do not match a {info.family} built from its config: "
            f"{first[1].strip() if len(first) > 1 else first[0]}"
        ) from None
    bad = non_finite(model.inference_state())
    if bad:
        raise ZooError(f"{path} holds non-finite weights ({bad}): it cannot produce images")
    model.on_load(info.step)
    model.to(resolve_device(device)).eval()
    return Loaded(model, info, path, resolved.origin)


def onnx_files(loaded: Loaded) -> dict[str, Path]:
    """The model's graphs as ONNX files: given, or exported once and cached (keyed by the
    weights' sha256, inside the checkpoint for runs; `zoo.onnx_files.ExportSlot`)."""
    from zoo.onnx_files import MANIFEST, ExportSlot, graph_files

    if loaded.path.suffix == ".onnx":
        return graph_files(loaded.path)
    slot = ExportSlot.of(loaded.path)  # hashes the weights once
    cached = slot.cached()
    if cached is None:
        with staging_dir(slot.folder) as stage:
            made = stage / slot.folder.name
            made.mkdir()
            files = export_model(loaded, "onnx", made / slot.target.name)
            write_text(made / MANIFEST, slot.manifest(files))
            replace_dir(made, slot.folder)  # the set appears (or is replaced) whole
        cached = slot.cached()
        if cached is None:
            raise ZooError(f"the export cached in {slot.folder} changed while zoo wrote it")
    return graph_files(cached)


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


def export_model(loaded: Loaded, fmt: str, out: str | Path) -> list[Path]:
    """Run exporter ``fmt`` into a staging folder beside ``out`` and move what it reports
    into place: a failed exporter leaves nothing behind and replaces nothing."""
    registry = get_registry()
    spec = registry.exporter(fmt)
    exporter = import_target(spec.target)
    out = Path(out)
    if loaded.path.suffix == ".onnx":
        raise UsageError(f"{loaded.path} is already an export; export from its run or weights")
    if spec.suffix and out.suffix != spec.suffix:
        raise UsageError(f"--out {out} should end in {spec.suffix} for --format {fmt}")
    record = registry.plugin_of("exporter", fmt)
    who = f"exporter {fmt!r} of {record.origin() if record else 'an unknown plugin'}"
    loaded.model.to("cpu").eval()
    with staging_dir(out) as stage:
        try:
            written = [Path(p) for p in exporter(loaded.model, stage / out.name, loaded.info)]
        except ZooError:
            raise
        except PLUGIN_FAULTS as exc:
            raise PluginError(
                f"{who} failed: {type(exc).__name__}: {exc}; nothing was written"
            ) from exc
        if not written:
            raise PluginError(f"{who} reported no files; nothing was written")
        for path in written:
            if path.resolve().parent != stage.resolve() or not path.exists():
                raise PluginError(
                    f"{who} reported {path.name} but did not write it beside --out; "
                    "nothing was written"
                )
        final = [out.parent / path.name for path in written]
        for path, target in zip(written, final):
            os.replace(path, target)
    return final


def export(source: str | Path, fmt: str, out: str | Path) -> list[Path]:
    """Write ``source`` in format ``fmt`` (see `zoo plugins`) and return the files written."""
    return export_model(load(source, "cpu"), fmt, out)
