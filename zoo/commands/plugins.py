"""`zoo plugins`."""

from __future__ import annotations

import click

from zoo.commands.common import echo_json, table


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins, what each registered, and the ones that failed."""
    from zoo.registry import get_registry

    reg = get_registry()
    if as_json:
        echo_json([p.to_dict() for p in reg.plugins])
        return
    rows = []
    for p in sorted(reg.plugins, key=lambda p: (not p.builtin, p.distribution, p.name)):
        registered = ", ".join(p.families + p.exporters + p.catalogue) or "-"
        status = f"ERROR {p.error}" if p.error else registered
        rows.append(
            [
                p.name,
                f"{p.distribution} {p.version}",
                "built-in" if p.builtin else "",
                ",".join(h.removeprefix("register_") for h in p.hooks) or "-",
                status,
            ]
        )
    table(rows, ["PLUGIN", "DISTRIBUTION", "", "HOOKS", "REGISTERED"])
