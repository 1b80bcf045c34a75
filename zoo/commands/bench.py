"""`zoo bench`."""

from __future__ import annotations

import click

from zoo.commands.common import echo_json


@click.command("bench")
@click.argument("models", nargs=-1)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Train steps timed per model (after 3 warm-up steps).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="About how long each sampling timing repeats.",
)
@click.option("--compile", "use_compile", is_flag=True, help="Also time torch.compile sampling.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def bench_cmd(models, device, steps, seconds, use_compile, as_json) -> None:
    """Measure training and sampling speed of MODELS (default: every catalogue model with
    weights): train images/s and peak memory, sampling images/s at batch 256 and latency at
    batch 1 in PyTorch and onnxruntime, ONNX export time, and CLI start-up."""
    from zoo import api, bench

    names = list(models) or [e.name for e in api.list_models() if e.weights]
    result = bench.run(names, device, steps, seconds, use_compile)
    if as_json:
        echo_json(result)
        return
    click.echo(bench.format_table(result))
