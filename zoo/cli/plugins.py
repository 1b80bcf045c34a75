"""`zoo plugins`: what each plugin registered, and which ones failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from zoo.cli.common import echo_json, table

if TYPE_CHECKING:
    from zoo.registry.discovery import PluginRecord


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--check",
    is_flag=True,
    help="Also import every family and exporter and check it (imports torch; slower).",
)
def plugins_cmd(as_json: bool, check: bool) -> None:
    """List loaded plugins: distribution, version, hooks and what each registered.

    Failed plugins show their error; fix or remove them with `zoo uninstall DISTRIBUTION`.
    Set ZOO_PLUGINS=name,... to load only some plugins (empty: none), ZOO_STRICT_PLUGINS=1 to
    make plugin errors fatal.
    """
    from zoo.cli.main import COMMANDS
    from zoo.registry.discovery import get_registry

    reg = get_registry()
    reg.commands(reserved=COMMANDS)  # run register_commands so its results show
    warned = len(reg.problems)  # these were already printed on stderr as the plugins loaded
    if check:
        reg.check()
    found = reg.problems[warned:]
    plugins = sorted(reg.plugins, key=lambda p: (not p.builtin, p.distribution, p.name))
    if as_json:
        echo_json({"plugins": [p.to_dict() for p in plugins], "problems": reg.problems})
    else:
        headers = ["PLUGIN", "DISTRIBUTION", "", "STATUS", "HOOKS", "REGISTERED"]
        table([_row(p, check) for p in plugins], headers)
        if not check and any(_has_targets(p) and not p.error for p in plugins):
            click.echo(
                "loaded: registered, its families and exporters not imported yet; "
                "`zoo plugins --check` imports and checks them"
            )
        errors = [p.error for p in plugins if p.error]
        for p in plugins:
            if p.error:
                click.echo(f"{p.name} ({p.distribution}): {p.error}")
        for problem in found:  # check's findings that belong to no plugin
            if not any(problem in e for e in errors):
                click.echo(f"problem: {problem}")
        if check and not reg.problems:
            click.echo("all families and exporters import and implement their contract")
    if check and reg.problems:
        from zoo.errors import ZooError

        raise ZooError(f"found {len(reg.problems)} plugin problem(s)")


def _has_targets(p: PluginRecord) -> bool:
    return bool(p.families or p.exporters or p.data_sources or p.loggers)


def _status(p: PluginRecord, checked: bool) -> str:
    """FAILED, ok (checked, or nothing to import), or loaded (its targets not imported yet:
    a family that fails its contract shows only when checked or used)."""
    if p.error:
        return "FAILED"
    return "ok" if checked or not _has_targets(p) else "loaded"


def _row(p: PluginRecord, checked: bool) -> list[str]:
    registered = [
        *(f"family:{n}" for n in p.families),
        *(f"exporter:{n}" for n in p.exporters),
        *(f"data:{n}" for n in p.data_sources),
        *(f"logger:{n}" for n in p.loggers),
        *(f"model:{n}" for n in p.catalogue),
        *(f"command:{n}" for n in p.commands),
    ]
    return [
        p.name,
        f"{p.distribution} {p.version}".strip(),
        "built-in" if p.builtin else "",
        _status(p, checked),
        ",".join(h.removeprefix("register_") for h in p.hooks) or "-",
        ", ".join(registered) or "-",
    ]
