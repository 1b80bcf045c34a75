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
@click.option(
    "--int8",
    is_flag=True,
    help="ONNX with the sampling graph in int8 (same as --format onnx-int8), for CPUs with "
    "VNNI or AMX; kept only if its samples score within 10% of the float32 graph's FLD.",
)
@offline_option
def export_cmd(source: str, fmt: str, out: Path, fp16: bool, int8: bool) -> None:
    """Export SOURCE (a catalogue name's pretrained weights, a run directory or a weights
    file) for deployment.
    ONNX exports are checked in onnxruntime against PyTorch before they are kept."""
    from zoo import api

    for flag, variant in (("--fp16", fp16), ("--int8", int8)):
        if variant and fmt not in ("onnx", f"onnx-{flag[2:]}"):
            raise click.UsageError(f"{flag} applies to ONNX, not --format {fmt}")
    if fp16 and int8:
        raise click.UsageError("--fp16 and --int8 are two different exports: pick one")
    fmt = "onnx-fp16" if fp16 else "onnx-int8" if int8 else fmt
    if fmt == "onnx-int8":
        from zoo.evaluation.quantized import export_int8

        result = export_int8(source, out)
        for path in result.files:
            click.echo(f"wrote {path}")
        click.echo(
            f"int8 FLD {result.int8_fld:.2f}, float32 {result.float_fld:.2f} (kept: at most "
            f"{result.limit:.2f})"
        )
        return
    for path in api.export(source, fmt, out):
        click.echo(f"wrote {path}")
