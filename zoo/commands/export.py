"""`zoo export`."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.commands.common import offline_option


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
@offline_option
def export_cmd(source: str, fmt: str, out: Path) -> None:
    """Export SOURCE (a catalogue name's pretrained weights, a run directory or a weights
    file) for deployment.
    ONNX exports are checked in onnxruntime against PyTorch before they are kept."""
    from zoo import api

    for path in api.export(source, fmt, out):
        click.echo(f"wrote {path}")
