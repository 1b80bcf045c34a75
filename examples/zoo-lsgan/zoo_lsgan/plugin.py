"""The hooks zoo calls. Only names, schemas and import paths here: torch and numpy are
imported by the targets when they run, so `zoo --help`, `zoo list` and `zoo info` stay fast."""

from __future__ import annotations

from dataclasses import dataclass

from zoo import (
    DataSourceSpec,
    ExporterSpec,
    FamilySpec,
    LoggerSpec,
    hookimpl,
    setting,
)
from zoo.plugins import DCGANConfig


@dataclass(frozen=True)
class LSGANConfig(DCGANConfig):
    """DCGAN's networks and options; the loss is this family's one choice."""

    loss: str = setting("least-squares", "the paper's objective", "", ("least-squares",))


@hookimpl
def register_families(register):
    register(
        FamilySpec(
            "lsgan",
            "least-squares GAN, DCGAN-style nets (Mao et al. 2017)",
            "zoo_lsgan.model:LSGAN",
            config=LSGANConfig,
            train={"batch_size": 64, "image_size": 32},
            prior="generator",
            paper="Mao et al. 2017, Least Squares Generative Adversarial Networks",
        )
    )


@hookimpl
def register_catalogue(register):
    # entries, and their shipped weights, from the registry.toml beside this module
    from pathlib import Path

    from zoo.registry.catalogue import load_catalogue_file

    for entry in load_catalogue_file(Path(__file__).with_name("registry.toml")):
        register(entry)


@hookimpl
def register_data_sources(register):
    register(
        DataSourceSpec(
            "npz",
            "uint8 NCHW images and optional labels from a .npz (as zoo sample writes)",
            "zoo_lsgan.npz_data:load",
            argument="FILE.npz",
        )
    )


@hookimpl
def register_loggers(register):
    register(
        LoggerSpec(
            "stdout", "every logged scalar on stdout", "zoo_lsgan.stdout_logger:StdoutLogger"
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
