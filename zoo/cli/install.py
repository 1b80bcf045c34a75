"""`zoo install` and `zoo uninstall`: pip, run in zoo's own interpreter.

These never touch the plugin registry, so a broken plugin can always be uninstalled.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import click

from zoo.errors import UsageError, ZooError


def run_pip(args: list[str]) -> None:
    """Run ``python -m pip ARGS`` with the interpreter zoo runs in and exit with pip's code."""
    # pip's supported programmatic use is a subprocess of the target interpreter
    if importlib.util.find_spec("pip") is None:
        raise ZooError(
            f"pip is not installed in {sys.executable}; run: {sys.executable} -m ensurepip"
        )
    command = [sys.executable, "-m", "pip", *args]
    click.echo(f"running: {' '.join(command)}", err=True)
    sys.exit(subprocess.call(command))


PIP_ARG_HELP = "Pass an option to pip (repeatable), e.g. --pip-arg=--no-deps."


@click.command("install")
@click.argument("packages", nargs=-1, metavar="PKG_OR_PATH...")
@click.option(
    "-e",
    "--editable",
    "editables",
    multiple=True,
    metavar="PATH",
    help="Install a local plugin in editable (development) mode. Repeatable.",
)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade to the newest available version.")
@click.option("--pip-arg", "pip_args", multiple=True, metavar="ARG", help=PIP_ARG_HELP)
def install_cmd(
    packages: tuple[str, ...],
    editables: tuple[str, ...],
    upgrade: bool,
    pip_args: tuple[str, ...],
) -> None:
    """Install plugin packages (PyPI names, paths or URLs) into zoo's environment.

    \b
      zoo install ./examples/zoo-lsgan      (a path in a clone of zoo)
      zoo install some-plugin              (a name on the package index)
      zoo install -e ./my-plugin
    """
    if not packages and not editables:
        raise UsageError("name a package or path to install, or -e PATH")
    args = ["install", *(["--upgrade"] if upgrade else []), *pip_args, *packages]
    for path in editables:
        args += ["--editable", path]
    run_pip(args)


@click.command("uninstall")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--pip-arg", "pip_args", multiple=True, metavar="ARG", help=PIP_ARG_HELP)
def uninstall_cmd(names: tuple[str, ...], yes: bool, pip_args: tuple[str, ...]) -> None:
    """Uninstall plugin distributions (the DISTRIBUTION column of `zoo plugins`)."""
    if not yes and not sys.stdin.isatty():  # pip would ask, read EOF and print a traceback
        raise UsageError(
            "zoo uninstall asks for confirmation, and there is no terminal to ask on; "
            f"pass -y: zoo uninstall -y {' '.join(names)}"
        )
    from importlib.metadata import PackageNotFoundError, distribution

    missing = []
    for name in names:
        try:
            distribution(name)
        except PackageNotFoundError:
            missing.append(name)
    if missing:  # pip only warns and exits 0
        raise UsageError(
            f"{', '.join(missing)} is not installed; `zoo plugins` lists the installed "
            "distributions"
        )
    run_pip(["uninstall", *(["--yes"] if yes else []), *pip_args, *names])
