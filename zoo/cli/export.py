"""`zoo export`."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.common import offline_option


@click.command("export")
@click.argument("source")
@click.option(
    "--format",
    "fmt",
    default="onnx",
    show_default=True,
    help="An exporter: safetensors, onnx, or one a plugin adds (see `zoo plugins`).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file (.onnx, .safetensors, ...). Several networks get NAME.GRAPH.onnx.",
)
@click.option(
    "--fp16",
    is_flag=True,
    help="ONNX in float16 (same as --format onnx-fp16): half the size, for GPUs; checked "
    "against the float32 model within 1.6e-2.",
)
@offline_option
def export_cmd(source: str, fmt: str, out: Path, fp16: bool) -> None:
    """Export SOURCE (a catalogue name's pretrained weights, a run directory or a weights
    file) for deployment.
    ONNX exports are checked in onnxruntime against PyTorch before they are kept."""
    from zoo import api

    if fp16:
        if fmt not in ("onnx", "onnx-fp16"):
            raise click.UsageError(f"--fp16 applies to ONNX, not --format {fmt}")
        fmt = "onnx-fp16"
    for path in api.export(source, fmt, out):
        click.echo(f"wrote {path}")
