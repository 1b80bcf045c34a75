"""`zoo list`, `zoo info` and `zoo download`: the catalogue and its weights."""

from __future__ import annotations

import click

from zoo.commands.common import echo_json, table


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(as_json: bool) -> None:
    """List the catalogue of models and the families they are built from."""
    from zoo.catalogue import entry_to_dict
    from zoo.registry import get_registry

    reg = get_registry()
    models = sorted(reg.catalogue.values(), key=lambda e: e.name)
    families = sorted(reg.families.values(), key=lambda f: f.name)
    if as_json:
        echo_json(
            {
                "models": [entry_to_dict(e) for e in models],
                "families": [{"name": f.name, "summary": f.summary} for f in families],
            }
        )
        return
    table(
        [[e.name, e.family, e.data, "yes" if e.weights else "-", e.summary] for e in models],
        ["MODEL", "FAMILY", "DATA", "WEIGHTS", "SUMMARY"],
    )
    click.echo()
    table([[f.name, f.summary] for f in families], ["FAMILY", "SUMMARY"])


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show NAME's full recipe: family defaults merged with the catalogue's settings."""
    from zoo import api
    from zoo.settings import TrainSettings, merge

    recipe = api.resolve(name)
    cls = api.family_class(recipe.family)
    settings = merge(TrainSettings().to_dict(), cls.train_defaults, "train defaults")
    settings = merge(settings, recipe.train, f"the recipe of {name}")
    config = merge(dict(cls.defaults), recipe.config, f"the config of {name}")
    reg = api.get_registry()
    entry = reg.catalogue.get(name)
    info = {
        "name": recipe.name,
        "family": recipe.family,
        "family_summary": reg.families[recipe.family].summary,
        "data": recipe.data,
        "summary": entry.summary if entry else "",
        "train": settings,
        "config": config,
        "conditional": cls.conditional,
        "sample_options": {k: list(v) for k, v in cls.sample_options.items()},
        "weights": entry.weights.__dict__ if entry and entry.weights else None,
    }
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['name']}: {info['summary'] or info['family_summary']}")
    click.echo(f"  family  {info['family']} ({info['family_summary']})")
    click.echo(f"  data    {info['data']}")
    for section in ("train", "config"):
        click.echo(f"  {section}:")
        for key, value in info[section].items():
            click.echo(f"    {key} = {value!r}")
    if info["weights"]:
        click.echo(f"  weights {info['weights']['url']} (sha256 {info['weights']['sha256']})")
    click.echo("  change any key with --set KEY=VALUE")


@click.command("download")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even if cached.")
def download_cmd(name: str, force: bool) -> None:
    """Download NAME's pretrained weights into the cache (sha256-checked)."""
    from zoo.download import download
    from zoo.registry import get_registry

    path = download(get_registry().model(name), force=force)
    click.echo(str(path))
