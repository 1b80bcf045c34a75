"""What a training run is made of: a catalogue entry or a bare family, resolved to training
settings and a family config through the family's schema. Light: no torch, so `zoo info`
shows a full recipe without importing a family's networks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.base.settings import TrainSettings, merge, split_overrides
from zoo.contract.specs import CatalogueEntry, FamilySpec
from zoo.registry.discovery import get_registry

DEFAULT_DATA = "mnist-5k"


def list_models() -> list[CatalogueEntry]:
    return sorted(get_registry().catalogue.values(), key=lambda e: e.name)


def list_families() -> list[FamilySpec]:
    return sorted(get_registry().families.values(), key=lambda f: f.name)


@dataclass
class Recipe:
    """What to train: a catalogue entry, or a family with its defaults and a data source."""

    name: str
    family: str
    data: str
    train: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def resolve(target: str, data: str | None = None) -> Recipe:
    """A catalogue name or a family name -> Recipe; ``data`` overrides the entry's data."""
    reg = get_registry()
    if target in reg.catalogue:
        e = reg.model(target)
        return Recipe(e.name, e.family, data or e.data, dict(e.train), dict(e.config))
    if target in reg.families:
        # a bare family trains on the data of its first catalogue entry, if it has one
        entries = [e for e in list_models() if e.family == target]
        return Recipe(target, target, data or (entries[0].data if entries else DEFAULT_DATA))
    reg.model(target)  # raises with suggestions from the catalogue
    raise AssertionError("unreachable")


def recipe_settings(
    recipe: Recipe, overrides: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training settings, family config): TrainSettings <- the family's preferred settings
    <- the recipe <- ``overrides`` (`--set`), each layer checked against its schema."""
    family = get_registry().family(recipe.family, load=False)
    schema = family.config
    train_over, config_over = split_overrides(overrides or {}, schema.keys())
    settings = TrainSettings.defaults()
    for layer, where in (
        (family.train, f"the train settings of family {recipe.family}"),
        (recipe.train, f"the recipe of {recipe.name}"),
        (train_over, "--set"),
    ):
        settings = merge(settings, layer, where, TrainSettings)
    config = merge(schema.defaults(), recipe.config, f"the config of {recipe.name}", schema)
    config = merge(config, config_over, "--set", schema)
    schema.check(config, {*recipe.config, *config_over})
    return settings, config
