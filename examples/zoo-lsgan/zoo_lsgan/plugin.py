"""The hooks zoo calls. Only names and import paths here: torch and numpy are imported by
the targets when they run, so `zoo --help` and `zoo list` stay fast."""

from __future__ import annotations

from zoo import CatalogueEntry, ExporterSpec, FamilySpec, hookimpl


@hookimpl
def register_families(register):
    register(
        FamilySpec(
            "lsgan",
            "least-squares GAN, DCGAN-style nets (Mao et al. 2017)",
            "zoo_lsgan.model:LSGAN",
        )
    )


@hookimpl
def register_catalogue(register):
    register(
        CatalogueEntry(
            name="lsgan-mnist",
            family="lsgan",
            data="mnist-5k",
            summary="LSGAN on the 5,000 bundled MNIST digits, resized to 32x32",
            train={"steps": 3000, "batch_size": 64, "image_size": 32, "sample_every": 500},
            source="zoo-lsgan",
        )
    )


@hookimpl
def register_exporters(register):
    register(
        ExporterSpec(
            "npz",
            "NumPy .npz of the inference weights + JSON metadata (no pickle)",
            ".npz",
            "zoo_lsgan.npz_format:export",
        )
    )


@hookimpl
def register_commands(cli):
    from zoo_lsgan.commands import npz_inspect

    cli.add_command(npz_inspect)
