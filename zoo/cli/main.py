"""The `zoo` command line: a thin layer over `zoo.api`.

Commands live in `zoo.cli.*` and are imported only when run, so `zoo --help` and
`zoo list` never import torch. Errors become one line on stderr: exit 2 for usage, 1 for
runtime failures, 130 for Ctrl-C; `--debug` (or ZOO_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from zoo import __version__
from zoo.errors import ZooError, debug_enabled

COMMANDS = {
    "list": ("zoo.cli.catalogue:list_cmd", "List the catalogue of models and the families."),
    "info": ("zoo.cli.catalogue:info_cmd", "Show a model's or family's full recipe."),
    "plugins": ("zoo.cli.plugins:plugins_cmd", "List plugins and what they registered."),
    "train": ("zoo.cli.train:train_cmd", "Train a catalogue model or a family."),
    "sample": (
        "zoo.cli.sample:sample_cmd",
        "Write samples, interpolations and walks as PNG, GIF, .npy or .npz.",
    ),
    "invert": ("zoo.cli.invert:invert_cmd", "Find the latents of images (for --latents)."),
    "export": ("zoo.cli.export:export_cmd", "Export a model to safetensors or ONNX."),
    "serve": ("zoo.cli.serve:serve_cmd", "Serve models over HTTP (open inference protocol)."),
    "download": ("zoo.cli.catalogue:download_cmd", "Download a model's pretrained weights."),
    "eval": ("zoo.cli.evaluate:eval_cmd", "Score a model's samples by one protocol."),
    "bench": ("zoo.cli.bench:bench_cmd", "Measure training and sampling speed."),
    "install": ("zoo.cli.install:install_cmd", "Install plugin packages with pip."),
    "uninstall": ("zoo.cli.install:uninstall_cmd", "Uninstall plugin packages with pip."),
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or its help is shown)."""

    def plugin_commands(self) -> dict[str, click.Command]:
        """Commands from plugins' register_commands hook (loads plugins, not torch)."""
        from zoo.registry.discovery import get_registry

        return {**get_registry().commands(reserved=COMMANDS), **self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, _, attr = COMMANDS[name][0].partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.plugin_commands().get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help from the table above, so listing commands imports none of them
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        rows += [(n, c.get_short_help_str()) for n, c in self.plugin_commands().items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and self.get_command(ctx, name) is None and not name.startswith("-"):
            from zoo.registry.discovery import suggest

            raise click.UsageError(f"no command {name!r}{suggest(name, self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="zoo")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--offline",
    is_flag=True,
    help="Never touch the network (ZOO_OFFLINE=1): shipped and cached weights only.",
)
def cli(debug: bool, offline: bool) -> None:
    """zoo: a plugin-based zoo of generative image models.

    Sample a pretrained model, export it to safetensors or ONNX, or train your own:

      zoo sample dcgan-mnist -n 64 --out grid.png
      zoo export dcgan-mnist --format onnx --out dcgan.onnx
      zoo train dcgan-mnist --out runs/mine
    """
    if debug:
        os.environ["ZOO_DEBUG"] = "1"
    if offline:
        os.environ["ZOO_OFFLINE"] = "1"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every failure into one line and an exit code.

    A rank of a distributed run ends with os._exit once its output is flushed: torch's
    process-group threads can abort the interpreter's teardown ("terminate called without
    an active exception"), which would turn the run's exit code (0, 130, 143) into a crash."""
    try:
        _main(argv)
    except SystemExit as exc:
        if not _joined_a_process_group():
            raise
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:
        if not _joined_a_process_group():
            return
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _joined_a_process_group() -> bool:
    distributed = sys.modules.get("zoo.training.distributed")
    return bool(distributed is not None and getattr(distributed, "joined", False))


def _main(argv: list[str] | None) -> None:
    try:
        # without standalone mode click returns ctx.exit(n)'s code instead of exiting
        code = cli.main(args=argv, prog_name="zoo", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ZooError as exc:
        if debug_enabled():
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except OSError as exc:  # a full disk, a file too large, a read-only or missing folder
        if debug_enabled():
            traceback.print_exc()
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(
            f"Error: cannot use{where}: {exc.strerror or exc}; free space, or choose a path "
            "zoo may write",
            err=True,
        )
        sys.exit(1)
    except Exception as exc:
        if debug_enabled():
            traceback.print_exc()
        else:
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {exc} "
                "(run with --debug or ZOO_DEBUG=1 for the traceback)",
                err=True,
            )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
