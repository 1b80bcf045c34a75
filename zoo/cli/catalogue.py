"""`zoo list`, `zoo info` and `zoo download`: the catalogue and its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.cli.common import echo_json, offline_option, table


def _weights_column(entry) -> str:
    """shipped (inside the package), download (a URL), or - (train it yourself)."""
    if entry.weights is None:
        return "-"
    return "shipped" if entry.weights.file else "download"


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(as_json: bool) -> None:
    """List the catalogue of models and the families they are built from."""
    from zoo.registry.catalogue import entry_to_dict
    from zoo.registry.discovery import get_registry

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
        [[e.name, e.family, e.data, _weights_column(e), e.summary] for e in models],
        ["MODEL", "FAMILY", "DATA", "WEIGHTS", "SUMMARY"],
    )
    click.echo()
    table([[f.name, f.summary] for f in families], ["FAMILY", "SUMMARY"])


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show NAME's full recipe (a catalogue name or a family): every setting with its value,
    valid range and meaning, and the pretrained weights with their scores."""
    from zoo.base.settings import TrainSettings
    from zoo.registry.discovery import get_registry
    from zoo.registry.recipes import recipe_settings, resolve

    recipe = resolve(name)
    settings, config = recipe_settings(recipe)
    reg = get_registry()
    family = reg.families[recipe.family]
    entry = reg.catalogue.get(name)

    def described(values: dict, schema) -> list[dict]:
        return [
            {
                "key": f.name,
                "value": values[f.name],
                "default": f.default,
                "type": f.type,
                "valid": f.constraint(),
                "help": f.help
                + (" (a sampling default: training never reads it)" if f.sampling else ""),
                "sampling": f.sampling,
            }
            for f in schema.fields()
        ]

    info: dict[str, Any] = {
        "name": recipe.name,
        "family": recipe.family,
        "family_summary": family.summary,
        "data": recipe.data,
        "summary": entry.summary if entry else "",
        "train": settings,
        "config": config,
        "settings": {
            "train": described(settings, TrainSettings),
            "config": described(config, family.config),
        },
        "sample_options": [dict(o.__dict__) for o in family.sample_options],
        "weights": dict(entry.weights.__dict__) if entry and entry.weights else None,
    }
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['name']}: {info['summary'] or info['family_summary']}")
    click.echo(f"  family  {info['family']} ({info['family_summary']})")
    click.echo(f"  data    {info['data']}")
    for section in ("train", "config"):
        click.echo(f"  {section}:")
        for f in info["settings"][section]:
            shown = f"{f['key']} = {f['value']!r}"
            click.echo(f"    {shown:<26} {f['valid']:<11} {f['help']}")
    for o in family.sample_options:
        valid = " | ".join(o.choices) or o.range or o.type
        click.echo(f"  sample  --{o.name.replace('_', '-')} ({valid}): {o.help}")
    w = entry.weights if entry else None
    if w:
        where = w.file if w.file and Path(w.file).is_file() else w.url or w.file
        click.echo(f"  weights {where}")
        click.echo(f"          sha256 {w.sha256}, {w.size:,} bytes")
        if w.train_seconds:
            click.echo(f"          trained in {w.train_seconds / 60:.1f} min on {w.hardware}")
        if w.metrics:
            scores = ", ".join(f"{k} {v:g}" for k, v in w.metrics.items())
            click.echo(f"  scores  {scores} (zoo eval, N = 1000, seed 0)")
    elif entry:
        click.echo(f"  weights none shipped: train with `zoo train {name}`")
    click.echo("  change any key with --set KEY=VALUE")


@click.command("download")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even if a verified copy exists.")
@click.option(
    "--from",
    "from_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Fill the cache from a copied file instead (checked against the catalogue's sha256).",
)
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds one read may stall [30].")
@click.option("--retries", type=click.IntRange(min=0), help="Further attempts after a failure [5].")
@click.option(
    "--deadline", type=click.FloatRange(min=1), help="Seconds for the whole download [3600]."
)
@offline_option
def download_cmd(
    name: str,
    force: bool,
    from_file: Path | None,
    timeout: float | None,
    retries: int | None,
    deadline: float | None,
) -> None:
    """Make NAME's pretrained weights available offline and print where they are.

    Shipped weights are verified in place; others are downloaded into the cache (resumed
    after an interruption, sha256-checked), from ZOO_WEIGHTS_URL when that mirror is set."""
    from dataclasses import replace

    from zoo.registry.discovery import get_registry
    from zoo.store.download import DownloadOptions
    from zoo.store.sources import fill_cache, pretrained

    entry = get_registry().model(name)
    if from_file is not None:
        resolved = fill_cache(entry, from_file)
    else:
        options = DownloadOptions.from_env()
        given: dict[str, Any] = {"timeout": timeout, "retries": retries, "deadline": deadline}
        options = replace(options, **{k: v for k, v in given.items() if v is not None})
        resolved = pretrained(entry, force=force, options=options)
    click.echo(f"{resolved.path}  ({resolved.origin}, sha256 verified)")
