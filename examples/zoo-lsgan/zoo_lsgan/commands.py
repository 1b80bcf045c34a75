"""`zoo npz-inspect`: what a .npz export holds, without torch."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("npz-inspect")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def npz_inspect(file: Path, as_json: bool) -> None:
    """Show what FILE, from `zoo export --format npz`, holds: model, graphs, arrays."""
    from zoo_lsgan.npz_format import read

    meta, arrays = read(file)
    tensors = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}
    parameters = sum(int(v.size) for v in arrays.values() if v.dtype.kind == "f")
    if as_json:
        click.echo(json.dumps({**meta, "arrays": tensors, "parameters": parameters}, indent=2))
        return
    info = meta["info"]
    spec = info["spec"]
    click.echo(f"{file}: {info['name'] or info['family']} ({info['family']}), step {info['step']}")
    size = f"{spec['channels']}x{spec['size']}x{spec['size']}"
    click.echo(f"  images   {size}, classes {spec['num_classes']}")
    for name, graph in meta["graphs"].items():
        inputs = ", ".join(f"{k}{v}" for k, v in graph["inputs"].items())
        click.echo(f"  graph    {name}({inputs}) -> {', '.join(graph['outputs'])}")
    click.echo(f"  arrays   {len(arrays)}, {parameters:,} floating-point values")
    width = max(map(len, tensors), default=0)
    for name, t in tensors.items():
        click.echo(f"    {name.ljust(width)}  {t['dtype']:8} {tuple(t['shape'])}")
