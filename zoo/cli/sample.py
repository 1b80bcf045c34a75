"""`zoo sample`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.base.grids import MAX_NPZ
from zoo.cli.common import FamilyOptionsCommand, offline_option, runtime_option


def _held_out_inputs(data: str, spec, second_domain: bool, n: int):
    """Without --input, a translation model translates its data's held-out images."""
    from zoo.contract.imagesets import to_float
    from zoo.data.sources import load_dataset

    held_out = load_dataset(data, image_size=spec.size, channels=spec.channels)
    images = held_out.test_b if second_domain else held_out.test
    if images is None:
        return None
    click.echo(f"no --input: translating {min(n, len(images))} held-out images of {data}", err=True)
    return to_float(images.images[:n])


@click.command("sample", cls=FamilyOptionsCommand)
@click.argument("source")
@click.option(
    "-n",
    "n",
    type=int,
    default=64,
    show_default=True,
    help="Number of images (per label with --label).",
)
@click.option(
    "--seed",
    default="0",
    show_default=True,
    help="The seed of the draws; A,B: the two ends of --interpolate.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("samples.png"),
    show_default=True,
    help="A .png grid, .npy / .npz arrays (uint8 NCHW), or for --interpolate and --walk a "
    ".gif / .webp animation.",
)
@click.option(
    "--truncation",
    type=float,
    help="Draw each latent coordinate from the normal truncated to [-PSI, PSI] (the "
    "truncation trick): cleaner, less varied images. Families with a prior graph.",
)
@click.option(
    "--interpolate",
    type=int,
    default=0,
    help="K images from --seed A,B's first image to its second, on the great circle between "
    "their latents; or between each pair of --latents rows or --input images (inverted).",
)
@click.option(
    "--walk",
    type=int,
    default=0,
    help="K images along a smooth closed path through the latent space, from --seed's image.",
)
@click.option(
    "--latents",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Render the latents of an .npz file (z, and labels for conditional models), as "
    "`zoo invert --out` writes.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="Class label(s) for conditional models: 7, 0,1,2 or all (a row each).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Image file or folder to reconstruct or translate. Repeatable.",
)
@runtime_option
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    help="onnxruntime intra-op threads (0: its default).",
)
@click.option("--nrow", type=click.IntRange(min=0), default=0, help="Images per grid row.")
@offline_option
def sample_cmd(
    source, n, seed, out, truncation, interpolate, walk, latents, labels, inputs, runtime,
    device, threads, nrow, **family,
):  # fmt: skip
    """Sample from SOURCE: a catalogue name (its pretrained weights), a run directory, a
    .safetensors or .onnx file, or an http(s) URL of a .safetensors file.

    Families with a prior graph, and diffusion models with a deterministic sampler, also
    interpolate (--interpolate), walk (--walk), truncate (--truncation) and render latents
    (--latents), without torch where no gradient is needed."""
    from zoo.base.grids import ANIMATIONS, check_output, check_size
    from zoo.errors import UsageError
    from zoo.runtime.latents import LatentQuery

    options = {k: v for k, v in family.items() if v is not None}
    seeds = _seeds(seed)
    check_output(out)
    if n <= 0:
        raise UsageError(f"-n must be positive (got {n})")
    if out.suffix.lower() in ANIMATIONS and not (interpolate or walk):
        raise UsageError(f"{out.name}: an animation shows --interpolate K or --walk K")
    query = LatentQuery(n, seeds, None, truncation, interpolate, walk, latents)
    if query.path or truncation is not None or latents is not None:
        if options:
            raise UsageError("family options do not apply to latents: drop them")
        if inputs and (len(seeds) > 1 or latents is not None or not interpolate):
            raise UsageError(
                "--input images are the ends of --interpolate K (inverted first); for other "
                "latent tools, invert them (zoo invert) and pass --latents"
            )
        if not inputs:  # with inputs, once they are inverted
            query.check()
        _sample_latents(source, query, labels, inputs, out, runtime, device, threads, nrow)
        return
    if len(seeds) > 1:
        query.check()  # says what two seeds are for
    seed = seeds[0]
    check_size(out, n * (len(labels) or 1))
    onnx = _onnx_source(source, runtime) if not inputs else None
    small = n * (len(labels) or 1) <= MAX_NPZ  # larger .npy files are streamed through torch
    free = (n, seed, labels, out, nrow, threads, device, options)
    if onnx and small and _sample_without_torch(*onnx, *free):
        return

    from zoo import api
    from zoo.data.images import load_inputs, save_samples, write_npy_stream
    from zoo.registry.discovery import get_registry

    loaded = api.load(source, "cpu")
    spec = loaded.model.spec
    declared = {o.name: o for o in get_registry().family(loaded.info.family, False).sample_options}
    options = {k.replace("-", "_"): v for k, v in options.items()}
    unknown = sorted(set(options) - set(declared))
    if unknown:
        raise UsageError(
            f"{loaded.info.family} does not take --{unknown[0].replace('_', '-')} "
            f"(its options: {', '.join('--' + k for k in declared) or 'none'})"
        )
    if out.suffix.lower() == ".npy" and not (labels or inputs or options):
        shape = (spec.channels, spec.size, spec.size)
        stream = api.sample_stream(
            source, n, seed=seed, runtime=runtime, device=device, threads=threads, loaded=loaded
        )
        providers: list[str] = []

        def chunks():
            for part in stream:
                providers.append(part.provider)
                yield part.images

        write_npy_stream(out, n, shape, chunks())
        click.echo(f"wrote {n} images to {out} ({providers[0]}; {loaded.origin})")
        return
    plain = runtime == "auto" and small and not inputs
    exported = _export_for_cpu(loaded, device) if plain else None
    if exported and _sample_without_torch(*exported, *free):
        return
    label_list, n, nrow = _per_label(labels, spec.num_classes, n, nrow)
    check_size(out, n)  # the images --label all makes, not the options given
    images = (
        load_inputs(list(inputs), spec.channels, spec.size, loaded.info.data) if inputs else None
    )
    if images is None and loaded.model.domains == 2:
        second = any(v in declared[k].second_domain for k, v in options.items())
        images = _held_out_inputs(loaded.info.data, spec, second, n)
    if images is not None:
        n = len(images)
    for name, option in declared.items():  # which domain a translation read, said below
        if option.second_domain and name not in options:
            options[name] = option.choices[0]
    rows = [v for k, v in options.items() if declared[k].row and isinstance(v, int)]
    nrow = nrow or (rows[0] if rows else 0)
    result = api.sample(
        source,
        n,
        seed=seed,
        labels=label_list,
        inputs=images,
        options=options,
        runtime=runtime,
        device=device,
        threads=threads,
        loaded=loaded,
    )
    save_samples(out, result.images, nrow, result.labels)  # nrow 0: a square grid
    chosen = "".join(f"; {k.replace('_', '-')} {v}" for k, v in options.items())
    click.echo(
        f"wrote {len(result.images)} images to {out} ({result.provider}; {loaded.origin}{chosen})"
    )


def _seeds(text: str) -> tuple[int, ...]:
    from zoo.errors import UsageError

    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) < 2**63 for p in parts):
        raise UsageError(f"bad --seed {text[:40]!r}: a whole number, or two (A,B) to interpolate")
    return tuple(int(p) for p in parts)


def _sample_latents(
    source: str,
    query: Any,
    labels: tuple[str, ...],
    inputs: tuple[Path, ...],
    out: Path,
    runtime: str,
    device: str,
    threads: int,
    nrow: int,
) -> None:
    """Truncated draws, an interpolation, a walk or a file of latents through the prior
    graph: in onnxruntime without torch where the export is at hand (as plain sampling),
    else through `zoo.api.sample_latents`; --input images are inverted first."""
    from dataclasses import replace

    if not inputs:
        onnx = _onnx_source(source, runtime)
        if onnx and _latents_without_torch(*onnx, query, labels, out, nrow, threads, device):
            return

    from zoo import api
    from zoo.base.grids import check_size
    from zoo.data.images import load_inputs, save_samples

    loaded = api.load(source, "cpu")
    spec = loaded.model.spec
    if not inputs and runtime == "auto":
        exported = _export_for_cpu(loaded, device)
        if exported and _latents_without_torch(
            *exported, query, labels, out, nrow, threads, device
        ):
            return
    query = _with_labels(query, labels, spec.num_classes)
    if inputs:  # the ends are images: invert them, then join their latents
        images = load_inputs(list(inputs), spec.channels, spec.size, loaded.info.data)
        found = api.invert(source, images, device=device, loaded=loaded)
        rows = {"z": found.z.numpy()}
        if found.labels is not None:
            rows["labels"] = found.labels.numpy()
        query = replace(query, rows=rows, seeds=(0,))
    result = api.sample_latents(
        source, query, runtime=runtime, device=device, threads=threads, loaded=loaded
    )
    check_size(out, len(result.images))
    save_samples(out, result.images, nrow or result.nrow, result.labels)
    click.echo(f"wrote {len(result.images)} images to {out} ({result.provider}; {loaded.origin})")


def _with_labels(query: Any, labels: tuple[str, ...], num_classes: int) -> Any:
    """--label values for a query: one per image for plain draws (n per label, a row each),
    as given for a path (one for all, or one per end)."""
    from dataclasses import replace

    from zoo.runtime.onnx_sampling import parse_labels

    if not labels:
        return query
    if query.path:
        return replace(query, labels=parse_labels(labels, num_classes))
    per_label, n, _ = _per_label(labels, num_classes, query.n, 0)
    return replace(query, labels=per_label, n=n)


def _latents_without_torch(
    path: Path,
    origin: str,
    query: Any,
    labels: tuple[str, ...],
    out: Path,
    nrow: int,
    threads: int,
    device: str,
) -> bool:
    """`_sample_latents` in onnxruntime on the CPU, without importing torch; False where the
    file or the request needs torch (a GPU, no prior graph, draws NumPy cannot mirror)."""
    from zoo.base.grids import check_size, save_arrays, to_uint8
    from zoo.base.torch_random import TorchGenerator
    from zoo.runtime.latents import feed_for
    from zoo.runtime.onnx_sampling import PriorSampler, StepSampler

    if not _on_cpu(device) or not path.is_file():
        return False
    sampler = PriorSampler.open(path, threads) or StepSampler.open(path, threads)
    prior = sampler.prior if sampler is not None else None
    if sampler is None or prior is None:
        return False
    query = _with_labels(query, labels, sampler.info.spec.num_classes)
    try:
        feed, per_row = feed_for(prior, query, TorchGenerator)
    except ValueError:  # fewer than 16 values: torch draws them another way
        return False
    check_size(out, len(feed["z"]))
    images = sampler.render(feed, one_by_one=query.path)
    save_arrays(out, to_uint8(images), nrow or per_row, feed.get("labels"))
    click.echo(f"wrote {len(images)} images to {out} ({sampler.provider}; {origin})")
    return True


def _on_cpu(device: str) -> bool:
    """Whether ``--device`` means the CPU, where onnxruntime samples without torch."""
    from zoo.runtime.onnx_sampling import gpu_visible

    return device == "cpu" or (device == "auto" and not gpu_visible())


def _per_label(
    labels: tuple[str, ...], num_classes: int, n: int, nrow: int
) -> tuple[list[int] | None, int, int]:
    """`--label` values as one label per image, ``n`` images per label in a row each: the
    labels, the number of images and the row length."""
    from zoo.runtime.onnx_sampling import parse_labels

    if not labels:
        return None, n, nrow
    per_label = [label for label in parse_labels(labels, num_classes) for _ in range(n)]
    return per_label, len(per_label), nrow or n


def _onnx_source(source: str, runtime: str) -> tuple[Path, str] | None:
    """The ONNX file to sample and where it came from: SOURCE itself, or (runtime auto or
    onnx) the export cached for SOURCE's weights by an earlier call (zoo.api.onnx_files)."""
    from zoo.store.exports import ExportSlot
    from zoo.store.sources import resolve

    if source.endswith(".onnx") and runtime in ("auto", "onnx"):
        return Path(source), source
    if runtime.startswith("torch"):
        return None
    resolved = resolve(source)
    weights = resolved.path
    cached = ExportSlot.of(weights).cached() if weights.suffix == ".safetensors" else None
    return (cached, f"{resolved.origin}, exported to {cached}") if cached else None


def _export_for_cpu(loaded: Any, device: str) -> tuple[Path, str] | None:
    """With the default runtime, a family that declares its prior graph samples on the CPU
    through onnxruntime: export the weights once into the cache (zoo.api.onnx_files), so that
    this call and every later one, which skips torch, give the same images. The ONNX file and
    where it came from; None where torch samples instead: a GPU, a family without a prior
    graph, or weights that do not export."""
    from zoo import api
    from zoo.errors import ZooError
    from zoo.registry.discovery import get_registry

    if not _on_cpu(device):
        return None
    family = get_registry().family(loaded.info.family, False)
    if not (family.prior or family.multistep):
        return None
    try:
        path = min(api.onnx_files(loaded).values())
    except (ZooError, OSError):  # an export that fails or cannot be cached: torch samples
        return None
    return path, f"{loaded.origin}, exported to {path}"


def _sample_without_torch(
    path: Path,
    origin: str,
    n: int,
    seed: int,
    labels: tuple[str, ...],
    out: Path,
    nrow: int,
    threads: int,
    device: str,
    options: dict[str, Any],
) -> bool:
    """Sample an ONNX file on the CPU in onnxruntime without importing torch: a one-step
    family's prior graph, or a multi-step family's denoiser with zoo's sampling loop (and its
    options); False when the file or the request needs torch."""
    from zoo.base.grids import check_size, save_arrays, to_uint8
    from zoo.registry.discovery import get_registry
    from zoo.runtime.onnx_sampling import PriorSampler, StepSampler

    if not _on_cpu(device) or not path.is_file():
        return False
    prior = PriorSampler.open(path, threads) if not options else None
    steps = StepSampler.open(path, threads) if prior is None else None
    sampler = prior or steps
    if sampler is None:
        return False
    family = get_registry().family(sampler.info.family, load=False)
    checked = family.check_sample_options(dict(options))
    label_list, n, nrow = _per_label(labels, sampler.info.spec.num_classes, n, nrow)
    check_size(out, n)
    result = (steps.sample(n, seed, label_list, checked) if steps is not None
              else prior.sample(n, seed, label_list) if prior is not None else None)  # fmt: skip
    if result is None:
        return False
    images, given = result
    save_arrays(out, to_uint8(images), nrow, given)
    chosen = "".join(f"; {k.replace('_', '-')} {v}" for k, v in checked.items())
    click.echo(f"wrote {len(images)} images to {out} ({sampler.provider}; {origin}{chosen})")
    return True
