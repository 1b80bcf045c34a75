"""`zoo train`."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("train")
@click.argument("model")
@click.option(
    "--data",
    help="Data source: mnist-5k, digits, mnist, fashion-mnist, cifar10, "
    "folder:PATH, unpaired:A,B (default: the catalogue entry's).",
)
@click.option("--out", type=click.Path(path_type=Path), help="Run directory [runs/MODEL].")
@click.option("--steps", type=click.IntRange(min=1), help="Training steps.")
@click.option(
    "--epochs",
    type=click.FloatRange(min=0, min_open=True),
    help="Train for this many passes over the data instead of --steps.",
)
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting or hyperparameter (see `zoo info MODEL`). Repeatable.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--precision",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "fp32", "bf16"]),
    help="auto: bf16 on CUDA; on a CPU with AMX or AVX-512 BF16, bf16 for recipes whose "
    "quality holds in it (setting auto_bf16) when a short measurement shows it faster; else "
    "fp32. bf16: autocast on either.",
)
@click.option(
    "--compile",
    "compile_",
    is_flag=True,
    help="Compile the networks with torch.compile: slower first steps, faster later ones on "
    "a GPU; not for losses with a gradient penalty.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    help="Random seed [0]; a resumed run keeps its own.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--log",
    "log",
    multiple=True,
    metavar="NAME",
    help="Also log to NAME: csv, tensorboard or a plugin's logger (`zoo plugins`). Repeatable.",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    help="Train on this many processes of this machine (one per GPU), as torchrun would.",
)
def train_cmd(
    model,
    data,
    out,
    steps,
    epochs,
    batch_size,
    sets,
    device,
    precision,
    compile_,
    seed,
    resume,
    quiet,
    log,
    nproc,
) -> None:
    """Train MODEL (a catalogue name or a family) and write checkpoints, sample grids and
    metrics to a run directory. Ctrl-C saves a checkpoint; --resume continues it.

    Several processes or machines: `torchrun --nproc-per-node N -m zoo train MODEL ...`
    (--nproc N is the shortcut for one machine); each trains a shard of every batch."""
    from zoo import api
    from zoo.base.settings import parse_assignments

    if nproc > 1:
        _launch(nproc)

    result = api.train(
        model,
        data=data,
        out=out,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        overrides=parse_assignments(sets),
        device=device,
        seed=seed,
        resume=resume,
        precision=precision,
        progress=not quiet,
        compile=compile_,
        log=list(log),
    )
    if os.environ.get("RANK", "0") != "0":  # rank 0 speaks for the job
        return
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.last.items())
    click.echo(f"trained {result.step} steps in {result.seconds:.1f}s ({losses})")
    click.echo(f"run: {result.run_dir}  (sample it: zoo sample {result.run_dir} --out grid.png)")


def _launch(nproc: int) -> None:
    """Run the same command without --nproc as ``nproc`` ranks
    (zoo.training.distributed.launch_local) and exit with their code."""
    import sys

    from zoo.training.distributed import launch_local

    if "WORLD_SIZE" in os.environ:
        raise click.UsageError("--nproc inside torchrun: drop --nproc")
    args = sys.argv[1:]
    at = next((i for i, a in enumerate(args) if a == "--nproc" or a.startswith("--nproc=")), None)
    if at is None:  # called from Python, not the command line
        raise click.UsageError("--nproc works from the command line; call torchrun instead")
    del args[at : at + (1 if "=" in args[at] else 2)]
    sys.stdout.flush()
    sys.exit(launch_local(nproc, args))
