"""`zoo bench`: how fast each model trains and samples, measured one way for every model.

For each model, in this process: the recipe's train step (steady state: warm-up steps are
not timed, and the steps timed are the run's last ones, so a growing PGGAN is at full size
and a weight-clipping WGAN is past its critic bursts), the peak memory while it trains,
sampling through zoo's runners (torch eager, optionally torch.compile, onnxruntime) at
batch 256 and batch 1, and the ONNX export. Numbers are medians of repeated timings; the
machine, threads and versions are part of the result, since a number without them is no
number.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from zoo import api
from zoo.data import load_dataset
from zoo.model import Graph, ModelInfo
from zoo.onnx_files import graph_files
from zoo.runtime import OnnxRunner, TorchRunner, resolve_device
from zoo.settings import TrainSettings
from zoo.training import Trainer

BATCH = 256
RUNTIMES = ("eager", "compile", "onnx")


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
    train_peak_mb: float  # RSS on the CPU (VmHWM), max allocated on CUDA
    export_s: float
    sampling: dict[str, Sampling | str] = field(default_factory=dict)  # str: why not


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


def _median_time(fn: Callable[[], Any], seconds: float, sync: Callable[[], None]) -> float:
    """Median seconds per call of ``fn`` over about ``seconds`` (at least 3 calls), after
    two warm-up calls."""
    for _ in range(2):
        fn()
    sync()
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - begin < seconds:
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def bench_train(name: str, device: torch.device, steps: int) -> tuple[float, float]:
    """(images/s, peak MB) of the recipe's train step over its last ``steps`` steps."""
    recipe = api.resolve(name)
    train, config = api.recipe_settings(recipe)
    settings = TrainSettings(**train)
    data = load_dataset(recipe.data, image_size=settings.image_size, channels=settings.channels)
    info = ModelInfo(recipe.family, config, data.spec, recipe.name, recipe.data)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        trainer = Trainer(
            api.build(info), info, data, settings, Path(tmp), device, 0, "auto", False
        )
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
            model.train_step(trainer._batch(k), step)
            images += k * trainer.batches.batch_size
        sync()
        rate = images / (time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _peak_rss_mb()
    return rate, peak


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
) -> tuple[str, float, dict[str, Sampling | str]]:
    """(graph, ONNX export seconds, speed per runtime)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    results: dict[str, Sampling | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        api.export_model(loaded, "onnx", Path(tmp) / "model.onnx")  # exports from the CPU
        export_s = time.perf_counter() - start
        graphs = loaded.model.to(device).eval().graphs()  # then the torch runners' device
        name = sampling_graph(graphs)
        runners: dict[str, Any] = {}
        for runtime in runtimes:
            if runtime == "eager":
                runners[runtime] = TorchRunner(graphs, device)
            elif runtime == "compile":
                compiled = {
                    k: Graph(cast(nn.Module, torch.compile(g.module)), g.example, g.outputs)
                    for k, g in graphs.items()
                }
                runners[runtime] = TorchRunner(compiled, device)
            else:
                written = sorted(Path(tmp).glob("model*.onnx"))  # model.onnx or model.GRAPH.onnx
                runners[runtime] = OnnxRunner(graph_files(written[0]), str(device))
        for runtime, runner in runners.items():
            try:
                timings = []
                for n in (BATCH, 1):
                    call = partial(runner, name, **graph_inputs(graphs[name], n))
                    timings.append(_median_time(call, seconds, sync))
            except Exception as exc:  # torch.compile needs a compiler; say why it is missing
                results[runtime] = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
                continue
            results[runtime] = Sampling(round(BATCH / timings[0], 1), round(timings[1] * 1e3, 3))
    return name, export_s, results


def bench_model(
    name: str, device: torch.device, steps: int, seconds: float, runtimes: tuple[str, ...]
) -> ModelBench:
    rate, peak = bench_train(name, device, steps)
    loaded = api.load(name, "cpu")
    graph, export_s, sampling = bench_sampling(loaded, device, seconds, runtimes)
    return ModelBench(name, graph, round(rate, 1), round(peak, 1), round(export_s, 2), sampling)


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
) -> dict[str, Any]:
    """The whole benchmark as one JSON-able dict."""
    dev = resolve_device(device)
    runtimes = RUNTIMES if compile else ("eager", "onnx")
    models = [bench_model(n, dev, steps, seconds, runtimes) for n in names]
    return {
        "machine": machine(dev),
        "startup_s": cli_startup(names[0] if names else "dcgan-mnist"),
        "models": [asdict(m) for m in models],
    }


def format_table(result: dict[str, Any]) -> str:
    """The result as Markdown: the machine, one row per model, the start-up times."""
    m = result["machine"]
    head = (
        f"{m['date']}, {m['cpu']}, {m['cores']} cores, {m['threads']} torch threads, "
        f"device {m['device']}{' (' + m['gpu'] + ')' if 'gpu' in m else ''}, torch {m['torch']},"
        f" onnxruntime {m['onnxruntime']}"
    )
    runtimes = [r for r in RUNTIMES if any(r in x["sampling"] for x in result["models"])]
    cols = ["model", "train img/s", "peak MB", "export s"]
    for r in runtimes:
        cols += [f"{r} img/s @256", f"{r} ms @1"]
    if "onnx" in runtimes and "eager" in runtimes:
        cols += ["onnx/eager @256", "eager/onnx ms @1"]
    rows = []
    for x in result["models"]:
        row = [
            f"{x['name']} ({x['graph']})",
            f"{x['train_images_per_s']:,.0f}",
            f"{x['train_peak_mb']:,.0f}",
            f"{x['export_s']:.2f}",
        ]
        for r in runtimes:
            s = x["sampling"].get(r)
            row += (
                [f"{s['images_per_s']:,.0f}", f"{s['latency_ms']:.2f}"]
                if isinstance(s, dict)
                else [str(s), ""]
            )
        e, o = x["sampling"].get("eager"), x["sampling"].get("onnx")
        if "onnx" in runtimes and "eager" in runtimes:
            if isinstance(e, dict) and isinstance(o, dict):
                row += [
                    f"{o['images_per_s'] / e['images_per_s']:.2f}x",
                    f"{e['latency_ms'] / o['latency_ms']:.2f}x",
                ]
            else:
                row += ["", ""]
        rows.append(row)
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "| command | seconds |", "|---|---|"]
    lines += [f"| `{k}` | {v:.2f} |" for k, v in result["startup_s"].items()]
    return "\n".join(lines)
