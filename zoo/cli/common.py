"""Helpers shared by the commands: JSON output and `--set` parsing."""

from __future__ import annotations

import json
import os
from typing import Any

import click

runtime_option = click.option(
    "--runtime",
    type=click.Choice(["auto", "torch", "torch-bf16", "onnx"]),
    default="auto",
    show_default=True,
    help="PyTorch, or onnxruntime on the ONNX export. auto: onnx for .onnx files and, in `zoo "
    "sample` on the CPU, for drawing from a model's prior (exported once into the cache); "
    "else torch. torch-bf16: PyTorch under bf16 autocast (fast on GPUs and on CPUs with AMX "
    "or AVX-512 BF16; `zoo eval --runtime torch-bf16` scores it).",
)


def _set_offline(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ["ZOO_OFFLINE"] = "1"


offline_option = click.option(
    "--offline",
    is_flag=True,
    expose_value=False,
    callback=_set_offline,
    help="Use shipped and cached weights only; never touch the network (ZOO_OFFLINE=1).",
)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def table(rows: list[list[str]], headers: list[str]) -> None:
    """A plain, aligned text table (no colour: it goes into pipes and logs)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


class FamilyOptionsCommand(click.Command):
    """A command whose options include those the registered families declare, read from the
    registry each time the command parses or shows its help (not once at import)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return [*params[:-2], *_family_options(), *params[-2:]]  # before --offline and --help


def _family_options() -> list[click.Option]:
    """`zoo sample --NAME` for every sample option the loaded families declare."""
    from zoo.registry.discovery import get_registry

    declared: dict[str, tuple] = {}
    for fam in get_registry().families.values():
        for option in fam.sample_options:
            declared.setdefault(option.name, (option, []))[1].append(fam.name)
    out = []
    for name, (option, families) in declared.items():
        kinds = {"str": click.STRING, "int": click.INT, "float": click.FLOAT}
        kind = click.Choice(option.choices) if option.choices else kinds[option.type]
        out.append(
            click.Option(
                [f"--{name.replace('_', '-')}", name],
                type=kind,
                help=f"{option.help} ({', '.join(families)}).",
            )
        )
    return out
