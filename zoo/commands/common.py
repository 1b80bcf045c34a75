"""Helpers shared by the commands: JSON output and `--set` parsing."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from zoo.errors import UsageError

runtime_option = click.option(
    "--runtime",
    type=click.Choice(["auto", "torch", "onnx"]),
    default="auto",
    show_default=True,
    help="PyTorch, or onnxruntime on the ONNX export. auto: onnx for .onnx files and, in `zoo "
    "sample` on the CPU, for drawing from a model's prior (exported once into the cache); "
    "else torch.",
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


def parse_labels(values: tuple[str, ...], num_classes: int) -> list[int]:
    """``("7",)``, ``("0,1,2",)`` or ``("all",)`` -> class indices."""
    if num_classes == 0:
        raise UsageError("this model has no classes: drop --label")
    labels: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part == "all":
                labels += range(num_classes)
            elif part.lstrip("-").isdigit():
                label = int(part)
                if not 0 <= label < num_classes:
                    raise UsageError(
                        f"label {part[:20]} is out of range: this model has classes "
                        f"0..{num_classes - 1}"
                    )
                labels.append(label)
            else:
                raise UsageError(f"bad --label {part!r}: use integers, a comma list or 'all'")
    return labels
