"""`zoo bench`: how fast each model trains and samples, measured one way for every model.

For each model, in this process: the recipe's train step (steady state: warm-up steps are
not timed, and the steps timed are the run's last ones, so a growing PGGAN is at full size
and a weight-clipping WGAN is past its critic bursts), the peak memory while it trains,
sampling through zoo's runners (torch eager, with --precision bf16 also under bf16
autocast, optionally torch.compile, onnxruntime) at batch 256 and batch 1, and the ONNX
export. Numbers are medians of repeated timings; the machine, threads and versions are part
of the result, since a number without them is no number.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from zoo import api
from zoo.base.settings import TrainSettings
from zoo.contract.model import Graph, ModelInfo
from zoo.data.sources import load_dataset
from zoo.errors import UsageError
from zoo.evaluation import limits
from zoo.evaluation.limits import median_time
from zoo.registry.discovery import get_registry
from zoo.registry.recipes import recipe_settings, resolve
from zoo.runtime.devices import OnnxRunner, TorchRunner, resolve_device
from zoo.store.exports import graph_files
from zoo.training.trainer import Trainer

BATCH = 256
# int8: onnxruntime on the graph `zoo export --int8` writes
RUNTIMES = ("eager", "eager-bf16", "compile", "onnx", "int8")
# the roof a sampling runtime's rate is a share of; float32 for the others
ROOFS = {"eager-bf16": "bf16", "int8": "int8"}


@dataclass
class Sampling:
    """One runtime's sampling speed: images/s at batch 256, milliseconds at batch 1."""

    images_per_s: float
    latency_ms: float


@dataclass
class ModelBench:
    name: str
    graph: str  # the sampling graph timed
    train_images_per_s: float
    train_precision: str  # fp32 or bf16 (autocast)
    train_peak_mb: float  # RSS on the CPU (VmHWM), max allocated on CUDA
    train_tflop_per_s: float  # achieved: the step's matmul and convolution FLOPs per second
    train_mfu: float | None  # that over the GPU's dense bf16 peak; None on a CPU
    export_s: float | None  # None: sampling and export not measured (no weights, or --set)
    sample_mflop_per_image: float | None  # the sampling graph's matmul and convolution work
    sampling: dict[str, Sampling | str] = field(default_factory=dict)  # str: why not
    # multi-step families: milliseconds per image of the whole sampler at its default steps
    # (``sampling`` then times one network call)
    sampler_ms_per_image: dict[str, float] = field(default_factory=dict)


def machine(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    info = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # Linux: resets VmHWM, so each model's peak is its own
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # elsewhere: the process's peak so far

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# dense bf16 tensor-core peaks (no sparsity), FLOP/s, from NVIDIA's data sheets; an H100 that
# does not say PCIe is the SXM part ("NVIDIA H100 80GB HBM3")
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "H100 PCIe": 756e12, "A100": 312e12, "L4": 121e12}


def bf16_peak(gpu: str) -> float | None:
    """The GPU's dense bf16 peak, by the longest name in BF16_PEAK that its name contains."""
    known = [k for k in BF16_PEAK if k in gpu]
    return BF16_PEAK[max(known, key=len)] if known else None


@dataclass
class TrainBench:
    images_per_s: float
    precision: str
    peak_mb: float  # RSS on the CPU (VmHWM), max allocated on CUDA
    gflop_per_image: float  # of one train step (forward and backward of every network)


def make_trainer(
    name: str,
    device: torch.device,
    run_dir: Path,
    overrides: dict[str, Any] | None = None,
    precision: str = "auto",
) -> Trainer:
    """A trainer of the catalogue entry or family ``name`` (its recipe and ``overrides``, the
    `--set` values) as `zoo train` builds it, writing nothing until asked."""
    recipe = resolve(name)
    train, config = recipe_settings(recipe, overrides)
    settings = TrainSettings(**train)
    data = load_dataset(recipe.data, image_size=settings.image_size, channels=settings.channels)
    info = ModelInfo(recipe.family, config, data.spec, recipe.name, recipe.data)
    torch.manual_seed(0)
    return Trainer(api.build(info), info, data, settings, run_dir, device, 0, precision, False)


class FlopCount(TorchDispatchMode):
    """Matmul and convolution FLOPs of what runs inside it (forward and backward), counted
    with torch.utils.flop_counter's formulas, as MFU counts them. Unlike its FlopCounterMode
    it tracks no modules, whose hooks break double backward (the gradient penalty)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def bench_train(
    name: str,
    device: torch.device,
    steps: int,
    overrides: dict[str, Any] | None = None,
    precision: str = "auto",
) -> TrainBench:
    """Speed, memory and work of the recipe's train step over its last ``steps`` steps;
    ``overrides`` are `--set` values."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(name, device, Path(tmp), overrides, precision)
        model, total = trainer.model, trainer.total_steps()
        model.total_steps = total
        model.train()
        first = max(0, total - steps - 3)
        model.on_load(first)
        images = 0
        for step in range(first, total):
            if step == first + 3:  # three warm-up steps
                sync()
                start, images = time.perf_counter(), 0
            k = model.batches_per_step(step)
            batch = trainer._batch(k)
            if step == first:  # counts matmul and convolution FLOPs, as MFU does
                with FlopCount() as flops, trainer.autocast():
                    model.train_step(batch, step)
                per_image = flops.total / (k * trainer.batches.batch_size)
            else:
                with trainer.autocast():
                    model.train_step(batch, step)
            images += k * trainer.batches.batch_size
        sync()
        rate = images / (time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _peak_rss_mb()
    return TrainBench(rate, trainer.precision, peak, per_image / 1e9)


def sampling_graph(graphs: dict[str, Graph]) -> str:
    """The graph that turns noise into images where there is one (a VAE's decoder), else the
    first (a translator)."""
    return next((name for name, g in graphs.items() if "z" in g.example), next(iter(graphs)))


def graph_inputs(graph: Graph, n: int) -> dict[str, torch.Tensor]:
    """Inputs like the graph's example, at batch ``n``."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for key, example in graph.example.items():
        shape = (n, *example.shape[1:])
        if example.is_floating_point():
            out[key] = torch.randn(shape, generator=gen).clamp(-1, 1)
        else:
            high = int(example.max()) + 1
            out[key] = torch.randint(high, shape, generator=gen)
    return out


def bench_sampling(
    loaded: api.Loaded, device: torch.device, seconds: float, runtimes: tuple[str, ...]
) -> tuple[str, float, float, dict[str, Sampling | str]]:
    """(graph, ONNX export seconds, its MFLOP per image, speed per runtime)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    results: dict[str, Sampling | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        api.export_model(loaded, "onnx", Path(tmp) / "model.onnx")  # exports from the CPU
        export_s = time.perf_counter() - start
        graphs = loaded.model.to(device).eval().graphs()  # then the torch runners' device
        name = sampling_graph(graphs)
        with torch.no_grad(), FlopCount() as flops:  # inference_mode would hide the ops
            graphs[name].module(*graph_inputs(graphs[name], BATCH).values())
        mflop = flops.total / BATCH / 1e6
        runners: dict[str, Any] = {}
        for runtime in runtimes:
            if runtime in ("eager", "eager-bf16"):
                runners[runtime] = TorchRunner(graphs, device, bf16=runtime == "eager-bf16")
            elif runtime == "compile":
                # on CUDA, reduce-overhead replays each shape as a CUDA graph: one launch per
                # call instead of one per kernel, which is what small generators wait on
                mode = "reduce-overhead" if device.type == "cuda" else None
                compiled = {
                    k: Graph(
                        cast(nn.Module, torch.compile(g.module, mode=mode)), g.example, g.outputs
                    )
                    for k, g in graphs.items()
                }
                runners[runtime] = TorchRunner(compiled, device)
            elif runtime == "onnx":
                written = sorted(Path(tmp).glob("model*.onnx"))  # model.onnx or model.GRAPH.onnx
                runners[runtime] = OnnxRunner(graph_files(written[0]), str(device))
            else:  # int8: speed only; `zoo export --int8` also checks the samples' quality
                try:
                    out = Path(tmp) / "int8" / "model.onnx"
                    files = api.export_model(loaded, "onnx-int8", out)
                except UsageError:  # no latent to calibrate on, or no layer with an int8 kernel
                    results[runtime] = "not quantisable (zoo export --int8 says why)"
                    continue
                runners[runtime] = OnnxRunner(graph_files(files[0]), str(device))
        for runtime, runner in runners.items():
            try:
                timings = []
                for n in (BATCH, 1):
                    call = partial(runner, name, **graph_inputs(graphs[name], n))
                    timings.append(median_time(call, seconds, sync))
            except Exception as exc:  # torch.compile needs a compiler; say why it is missing
                results[runtime] = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
                continue
            results[runtime] = Sampling(round(BATCH / timings[0], 1), round(timings[1] * 1e3, 3))
    return name, export_s, mflop, results


SAMPLER_BATCH = 16


def bench_sampler(
    loaded: api.Loaded, device: torch.device, runtimes: tuple[str, ...]
) -> dict[str, float]:
    """A multi-step family's whole sampling loop at its default steps, in milliseconds per
    image at batch 16, per runtime: one timed call after a warm-up of one image (each call
    runs the network tens of times, so one is a stable measurement)."""
    out = {}
    for runtime in (r for r in runtimes if r in ("eager", "eager-bf16", "onnx")):
        draw = partial(
            api.sample,
            loaded.path,
            loaded=loaded,
            runtime=runtime.replace("eager", "torch"),
            device=str(device),
        )
        draw(1)
        start = time.perf_counter()
        draw(SAMPLER_BATCH)
        out[runtime] = round((time.perf_counter() - start) * 1e3 / SAMPLER_BATCH, 1)
    return out


def bench_model(
    name: str,
    device: torch.device,
    steps: int,
    seconds: float,
    runtimes: tuple[str, ...],
    overrides: dict[str, Any] | None = None,
    precision: str = "auto",
) -> ModelBench:
    """Training, and sampling and export of the published weights; ``overrides`` change the
    model, so with them (or without weights) only training is measured."""
    t = bench_train(name, device, steps, overrides, precision)
    tflops = t.images_per_s * t.gflop_per_image / 1e3
    peak = bf16_peak(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    mfu = round(tflops * 1e12 / peak, 4) if peak else None
    graph, export_s, mflop = "train step", None, None
    sampling: dict[str, Sampling | str] = {}
    whole: dict[str, float] = {}
    registry = get_registry()
    entry = registry.catalogue.get(name)
    if not overrides and entry is not None and entry.weights:
        loaded = api.load(name, "cpu")
        graph, export, work, sampling = bench_sampling(loaded, device, seconds, runtimes)
        export_s, mflop = round(export, 2), round(work, 2)
        if registry.family(entry.family, load=False).multistep:
            whole = bench_sampler(loaded, device, runtimes)
    return ModelBench(
        name,
        graph,
        round(t.images_per_s, 1),
        t.precision,
        round(t.peak_mb, 1),
        round(tflops, 4),
        mfu,
        export_s,
        mflop,
        sampling,
        whole,
    )


def cli_startup(name: str, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` wall seconds of light commands in fresh interpreters."""
    out = {}
    for args in (["--help"], ["list"], ["info", name]):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, check=True)
            best = min(best, time.perf_counter() - start)
        out["zoo " + " ".join(args)] = round(best, 3)
    return out


def run(
    names: list[str],
    device: str = "cpu",
    steps: int = 10,
    seconds: float = 1.0,
    compile: bool = False,
    overrides: dict[str, Any] | None = None,
    precision: str = "auto",
    int8: bool = False,
) -> dict[str, Any]:
    """The whole benchmark as one JSON-able dict: the machine, its limits (measured first,
    on a machine nothing else uses yet), each model, start-up times."""
    dev = resolve_device(device)
    runtimes = (
        "eager",
        *(["eager-bf16"] if precision == "bf16" else []),  # sampling in bf16 only when asked
        *(["compile"] if compile else []),
        "onnx",
        *(["int8"] if int8 else []),
    )
    roofs = limits.measure(dev, seconds)
    models = [bench_model(n, dev, steps, seconds, runtimes, overrides, precision) for n in names]
    return {
        "machine": machine(dev),
        "limits": roofs,
        "startup_s": cli_startup(names[0] if names else "dcgan-mnist"),
        "models": [asdict(m) for m in models],
    }


def reference_ratio(
    reference: str,
    device: torch.device,
    rounds: int = 3,
    steps: int = 60,
    precision: str = "auto",
) -> dict[str, Any]:
    """zoo's DCGAN train step against a plain PyTorch loop of the same networks.

    ``reference`` is ``zoo.training.plain_dcgan`` (run as a module) or a script like it: it trains
    the tutorials' 32x32 DCGAN (ngf = ndf = 64, batch 64, Adam) and prints JSON with
    ``train_img_per_s``.
    zoo's side is the dcgan-mnist recipe without its EMA (the same networks at the same
    size: its padded layout), in each memory format, in ``precision`` (the plain loop trains
    in float32). The runs alternate, ``rounds`` times,
    so that both see the same machine; the ratio is of the medians.
    """
    threads = str(torch.get_num_threads())
    layouts = ("contiguous", "channels_last")
    zoo_rates: dict[str, list[float]] = {f: [] for f in layouts}
    ref_rates: list[float] = []
    trained_in = precision
    for _ in range(rounds):
        for fmt in layouts:
            over = {"ema_decay": 0.0, "memory_format": fmt}
            timed = bench_train("dcgan-mnist", device, steps, over, precision)
            zoo_rates[fmt].append(timed.images_per_s)
            trained_in = timed.precision
        script = ["-m", reference] if reference == "zoo.training.plain_dcgan" else [reference]
        cmd = [sys.executable, *script, "--steps", str(steps + 10), "--threads", threads]
        out = subprocess.run(
            [*cmd, "--device", device.type], capture_output=True, text=True, check=True
        ).stdout
        ref_rates.append(json.loads(out.strip().splitlines()[-1])["train_img_per_s"])
    ref = statistics.median(ref_rates)
    return {
        "reference": str(reference),
        "reference_images_per_s": ref_rates,
        "zoo_images_per_s": zoo_rates,
        "zoo_precision": trained_in,
        "ratio": {f: round(statistics.median(r) / ref, 3) for f, r in zoo_rates.items()},
    }


def format_ratio(result: dict[str, Any]) -> str:
    """`reference_ratio`'s result as Markdown."""
    ref = result["reference_images_per_s"]
    lines = [
        "| training | images/s (each round) | median | ratio |",
        "|---|---|---|---|",
        f"| {Path(result['reference']).name} | {', '.join(f'{r:.0f}' for r in ref)} | "
        f"{statistics.median(ref):.0f} | 1.00x |",
    ]
    for fmt, rates in result["zoo_images_per_s"].items():
        lines.append(
            f"| zoo dcgan-mnist, {fmt}, {result.get('zoo_precision', 'fp32')} | "
            f"{', '.join(f'{r:.0f}' for r in rates)} | "
            f"{statistics.median(rates):.0f} | {result['ratio'][fmt]:.2f}x |"
        )
    return "\n".join(lines)


def machine_line(m: dict[str, Any]) -> str:
    """The machine a result was measured on, in one line."""
    return (
        f"{m['date']}, {m['cpu']}, {m['cores']} cores, {m['threads']} torch threads, "
        f"device {m['device']}{' (' + m['gpu'] + ')' if 'gpu' in m else ''}, torch {m['torch']},"
        f" onnxruntime {m['onnxruntime']}"
    )


def limits_line(roofs: dict[str, Any]) -> str:
    """The measured roofs in one line."""
    rates = ", ".join(f"{k} {v:,.0f}" for k, v in roofs["gflops"].items())
    what = roofs.get("gpu") or ", ".join(roofs["features"]) or "no AVX2"
    return (
        f"Limits at {roofs['threads']} threads (2048x2048 matrix product, GFLOP/s; int8 in "
        f"onnxruntime, GOP/s): {rates}; {what}"
    )


def peak_share(gflop_per_s: float, roofs: dict[str, Any] | None, precision: str) -> str:
    """A rate as a percentage of the measured roof of its precision."""
    roof = (roofs or {}).get("gflops", {}).get(precision)
    return f"{gflop_per_s / roof:.1%}" if roof else ""


def format_table(result: dict[str, Any]) -> str:
    """The result as Markdown: the machine and its limits, one row per model (each rate also
    as a share of the roof of its precision), the start-up times."""
    roofs = result.get("limits")
    head = machine_line(result["machine"])
    runtimes = [r for r in RUNTIMES if any(r in x["sampling"] for x in result["models"])]
    cuda = any(x["train_mfu"] is not None for x in result["models"])
    cols = ["model", "train img/s", "precision", "train TFLOP/s", "% of peak"]
    cols += [*(["MFU"] if cuda else []), "peak MB", "export s", "sample MFLOP/img"]
    for r in runtimes:
        cols += [f"{r} img/s @256", f"{r} % of {ROOFS.get(r, 'fp32')} peak"]
        cols.append(f"{r} ms @1")
    if "onnx" in runtimes and "eager" in runtimes:
        cols += ["onnx/eager @256", "eager/onnx ms @1"]
    whole = [
        r for r in runtimes if any(r in x.get("sampler_ms_per_image", {}) for x in result["models"])
    ]
    cols += [f"{r} ms/img, all steps" for r in whole]
    rows = []
    for x in result["models"]:
        precision = x.get("train_precision", "fp32")
        row = [
            f"{x['name']} ({x['graph']})",
            f"{x['train_images_per_s']:,.0f}",
            precision,
            f"{x['train_tflop_per_s']:.3f}",
            peak_share(x["train_tflop_per_s"] * 1e3, roofs, precision),
            *([f"{x['train_mfu']:.1%}" if x["train_mfu"] is not None else "n/a"] if cuda else []),
            f"{x['train_peak_mb']:,.0f}",
            f"{x['export_s']:.2f}" if x["export_s"] is not None else "",
            f"{x['sample_mflop_per_image']:.1f}" if x["sample_mflop_per_image"] else "",
        ]
        for r in runtimes:
            s = x["sampling"].get(r)
            if isinstance(s, dict):
                work = s["images_per_s"] * (x["sample_mflop_per_image"] or 0) / 1e3
                row += [
                    f"{s['images_per_s']:,.0f}",
                    peak_share(work, roofs, ROOFS.get(r, "fp32")) if work else "",
                    f"{s['latency_ms']:.2f}",
                ]
            else:
                row += [str(s or ""), "", ""]
        e, o = x["sampling"].get("eager"), x["sampling"].get("onnx")
        if "onnx" in runtimes and "eager" in runtimes:
            if isinstance(e, dict) and isinstance(o, dict):
                row += [
                    f"{o['images_per_s'] / e['images_per_s']:.2f}x",
                    f"{e['latency_ms'] / o['latency_ms']:.2f}x",
                ]
            else:
                row += ["", ""]
        per_image = x.get("sampler_ms_per_image", {})
        row += [f"{per_image[r]:,.1f}" if r in per_image else "" for r in whole]
        rows.append(row)
    lines = [head, *([limits_line(roofs)] if roofs else []), ""]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if whole:
        lines += [
            "",
            "A multi-step model's img/s and ms columns time one network call; its "
            "'all steps' columns the whole sampler at its default steps, batch 16.",
        ]
    lines += ["", "| command | seconds |", "|---|---|"]
    lines += [f"| `{k}` | {v:.2f} |" for k, v in result["startup_s"].items()]
    return "\n".join(lines)
