"""Hook specifications: the whole contract between zoo and its plugins.

A plugin is any module or object with functions decorated by `zoo.hookimpl`, exposed through
an entry point in the ``zoo`` group::

    [project.entry-points.zoo]
    lsgan = "zoo_lsgan.plugin"

Each hook receives a ``register`` callable. Call it once per object you contribute; zoo
validates every object as it arrives and reports problems naming your distribution.
Keep plugin modules light: import torch inside the implementation that a spec points to,
not at module level, so that `zoo --help` and `zoo list` stay fast.

How hooks evolve (plugin API v1): a spec is never changed in place. A new need gets a new hook
or a new optional field on the spec object that ``register`` takes; a hook on its way out
keeps working for at least two minor releases with pluggy's ``warn_on_impl``
(``@hookspec(warn_on_impl=DeprecationWarning("... use X"))``), which zoo reports once per
plugin on stderr and in `zoo plugins --json` (``deprecations``). zoo calls each
implementation itself, once per process and in registration order, so that a failure names
its plugin: pluggy's historic calls do not apply (nothing registers later), and
``zoo --debug`` prints the time each plugin's import and each hook call took.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from zoo.contract.specs import (
        CatalogueEntry,
        DataSourceSpec,
        ExporterSpec,
        FamilySpec,
        LoggerSpec,
    )

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_families(register: Callable[[FamilySpec], None]) -> None:
    """Register model families.

    Call ``register(FamilySpec(name, summary, target))`` for each family. ``target`` is an
    import path ``"package.module:ClassName"`` to a subclass of
    `zoo.contract.model.GenerativeModel`; zoo imports it only when the family is built, trained,
    sampled or exported. The class provides the family's defaults, networks, train step, sampling
    and export graphs (see `zoo.contract.model.GenerativeModel` for the methods it must implement).
    """


@hookspec
def register_exporters(register: Callable[[ExporterSpec], None]) -> None:
    """Register exporters that write a trained model to a deployment format.

    Call ``register(ExporterSpec(name, summary, suffix, target))``. ``target`` is an import
    path to a callable ``export(model, out: Path, info: ModelInfo) -> list[Path]`` that writes
    ``out`` (and any sibling files, in ``out``'s folder) and returns the paths it wrote; it
    must raise `zoo.errors.ZooError` when the result does not validate. zoo checks that
    ``out`` ends in ``suffix``, runs the exporter in a staging folder and moves the files it
    returns into place only when it succeeds.
    """


@hookspec
def register_data_sources(register: Callable[[DataSourceSpec], None]) -> None:
    """Add data sources for ``--data``.

    Call ``register(DataSourceSpec(name, summary, target, argument=""))``: a source used as
    ``--data NAME``, or as ``--data NAME:ARGUMENT`` when ``argument`` says what follows the
    colon. ``target`` is an import path to ``load(source, *, size, channels, download)``
    returning a `zoo.data.Dataset` (a train and a held-out split); zoo imports it only when
    the source is used. zoo's own sources (mnist-5k, digits, folder:, unpaired:, the
    torchvision sets) are registered through this hook too.
    """


@hookspec
def register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    """Add training loggers for `zoo train --log NAME`.

    Call ``register(LoggerSpec(name, summary, target))``. ``target`` is an import path to a
    callable ``(run_dir, config, start_step)`` returning an object with ``log(step,
    values)``, ``image(step, name, png_path)`` and ``close()`` (see `zoo.training.loggers`); zoo
    imports it only when a run asks for it. zoo's csv and tensorboard loggers are registered
    through this hook too.
    """


@hookspec
def register_catalogue(register: Callable[[CatalogueEntry], None]) -> None:
    """Add named models to the catalogue (`zoo list`).

    Call ``register(CatalogueEntry(name, family, data, ...))`` for each model: a family plus
    a data set, training settings and hyperparameters that override the family's defaults,
    and optionally pretrained weights (URL and sha256).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``zoo`` command line.

    ``cli`` is a `click.Group`: decorate functions with ``@cli.command()`` or call
    ``cli.add_command(cmd)``. The hook runs when the command line needs the list of commands
    (``zoo --help``, an unknown command name, `zoo plugins`), never for the built-in commands,
    so it must stay cheap: import heavy libraries inside the command's function. A command
    whose name is taken by a built-in or another plugin is dropped with a warning.
    """


def plugin(
    *specs: FamilySpec | ExporterSpec | CatalogueEntry | DataSourceSpec | LoggerSpec,
) -> SimpleNamespace:
    """A plugin object that registers ``specs``: the shortest way to publish them.

    ``my_plugin = zoo.plugin(FamilySpec(...), CatalogueEntry(...))`` in a light module, with
    ``[project.entry-points.zoo] mine = "my_package.plugin_module:my_plugin"``.
    """
    from zoo.contract.specs import (
        CatalogueEntry,
        DataSourceSpec,
        ExporterSpec,
        FamilySpec,
        LoggerSpec,
    )

    hooks = {}
    for kind, hook in (
        (FamilySpec, "register_families"),
        (ExporterSpec, "register_exporters"),
        (DataSourceSpec, "register_data_sources"),
        (LoggerSpec, "register_loggers"),
        (CatalogueEntry, "register_catalogue"),
    ):
        chosen = [s for s in specs if isinstance(s, kind)]
        if chosen:
            hooks[hook] = hookimpl(_registrar(chosen), specname=hook)
    return SimpleNamespace(**hooks)


def _registrar(specs: list[Any]) -> Callable[[Callable[[Any], None]], None]:
    def register_all(register: Callable[[Any], None]) -> None:
        for spec in specs:
            register(spec)

    return register_all
