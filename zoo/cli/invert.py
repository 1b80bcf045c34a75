"""`zoo invert`."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from zoo.cli.common import offline_option


@click.command("invert")
@click.argument("source")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Image file or folder to invert. Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The latents as .npz: z, labels (conditional models) and each image's loss; "
    "`zoo sample SOURCE --latents FILE` renders them.",
)
@click.option("--steps", type=int, default=200, show_default=True, help="Adam steps per start.")
@click.option("--restarts", type=int, default=4, show_default=True, help="Random starts.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="The class of each image, for conditional models (else searched): 7 or 0,1,2.",
)
@click.option(
    "--preview",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a .png: each input beside its reconstruction.",
)
@click.option(
    "--pixels-only",
    is_flag=True,
    help="Match pixels alone, without the digit classifier's features.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@offline_option
def invert_cmd(source, inputs, out, steps, restarts, seed, labels, preview, pixels_only, device):
    """Find, for each --input image, the latent (and class) whose image through SOURCE's
    prior is closest: in pixels and in zoo's digit classifier's features, by Adam from
    several starts (a VAE starts from its encoder). Families with a prior graph; a
    diffusion or flow model instead runs its deterministic sampler backwards to the noise
    that samples the image (and picks the class it denoises best)."""
    import numpy as np
    import torch

    from zoo import api
    from zoo.base.grids import check_output
    from zoo.data.images import load_inputs, save_samples
    from zoo.errors import UsageError
    from zoo.runtime.latents import write_latents
    from zoo.runtime.onnx_sampling import parse_labels

    if out.suffix.lower() != ".npz":
        raise UsageError(f"--out {out.name}: latents are written as a .npz file")
    if preview is not None:
        check_output(preview)
        if preview.suffix.lower() != ".png":
            raise UsageError(f"--preview {preview.name}: the preview is a .png grid")
    loaded = api.load(source, "cpu")
    spec = loaded.model.spec
    if api.prior(loaded).sampler is not None:  # a multi-step sampler, run backwards
        ctx = click.get_current_context()
        search = ("steps", "restarts", "seed", "pixels_only")
        said = [n for n in search if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE]
        if said:
            raise UsageError(
                f"{loaded.info.family} inverts by running its sampler backwards, with no "
                f"search: drop {', '.join('--' + n.replace('_', '-') for n in said)}"
            )
    images = load_inputs(list(inputs), spec.channels, spec.size, loaded.info.data)
    given = parse_labels(labels, spec.num_classes) if labels else None
    if given is not None and len(given) != len(images):
        raise UsageError(f"got {len(given)} labels for {len(images)} images: one per image")
    found = api.invert(
        source, images, steps=steps, restarts=restarts, seed=seed, labels=given,
        perceptual=not pixels_only, device=device, loaded=loaded,
    )  # fmt: skip
    classes = None if found.labels is None else found.labels.numpy()
    write_latents(out, found.z.numpy(), classes, loss=found.loss.numpy().astype(np.float32))
    if preview is not None:
        pairs = torch.stack([images, found.images]).transpose(0, 1).flatten(0, 1)
        save_samples(preview, pairs, 2)
    click.echo(
        f"inverted {len(images)} images through {loaded.info.name or loaded.info.family}: "
        f"mean loss {found.loss.mean():.4f}; latents in {out}"
        + (f", inputs and reconstructions in {preview}" if preview else "")
    )
