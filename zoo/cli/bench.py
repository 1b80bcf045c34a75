"""`zoo bench`."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.common import echo_json


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
@click.option(
    "--compile",
    "use_compile",
    is_flag=True,
    help="Also time torch.compile sampling (on CUDA with CUDA graphs).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a training setting or hyperparameter (such as image_size=64); the model "
    "then differs from the published weights, so only its training is measured.",
)
@click.option(
    "--reference",
    is_flag=False,
    flag_value="zoo.training.plain_dcgan",
    metavar="[SCRIPT]",
    help="Instead, time zoo's DCGAN training against a plain PyTorch loop of the same "
    "networks (zoo.training.plain_dcgan, or a SCRIPT that prints the same JSON), alternating, and "
    "print the ratio.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --reference: how many times each side runs.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="The training precision timed, as for zoo train (bf16: autocast, on CPU or GPU); "
    "bf16 also times PyTorch sampling in bf16 (eager-bf16, as --runtime torch-bf16).",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Also time onnxruntime on the int8 graph `zoo export --int8` writes (its quality "
    "is zoo export's to check).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def bench_cmd(
    models, device, steps, seconds, use_compile, assignments, reference, rounds, precision,
    int8, as_json,
) -> None:  # fmt: skip
    """Measure training and sampling speed of MODELS (default: every catalogue model with
    weights): first the machine's limits (matrix-product GFLOP/s per precision, CPU
    features), then train images/s, achieved TFLOP/s as a share of the peak of its precision
    (and MFU on a GPU) and peak memory, sampling images/s at batch 256 and latency at batch 1
    in PyTorch and onnxruntime, ONNX export time, and CLI start-up."""
    from zoo import api
    from zoo.base.settings import parse_assignments
    from zoo.evaluation import bench
    from zoo.runtime.devices import resolve_device

    if reference is not None:
        if reference != "zoo.training.plain_dcgan" and not Path(reference).is_file():
            raise click.BadParameter(
                f"{reference} is not a file: pass the plain training loop to compare with, "
                "or no value for zoo's own (zoo.training.plain_dcgan)",
                param_hint="--reference",
            )
        dev = resolve_device(device)
        result = {"machine": bench.machine(dev)}
        result.update(bench.reference_ratio(reference, dev, rounds, steps, precision))
        if as_json:
            echo_json(result)
        else:
            click.echo(f"{bench.machine_line(result['machine'])}\n\n{bench.format_ratio(result)}")
        return
    names = list(models) or [e.name for e in api.list_models() if e.weights]
    overrides = parse_assignments(assignments)
    result = bench.run(names, device, steps, seconds, use_compile, overrides, precision, int8)
    if as_json:
        echo_json(result)
        return
    click.echo(bench.format_table(result))
