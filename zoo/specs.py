"""What plugins register: small, torch-free descriptions of families, exporters and models."""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import ZooError
from zoo.settings import Config

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, carriage returns, ...) shown escaped,
    so text from a plugin or a file cannot rewrite the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def printable_fields(obj: Any) -> Any:
    """A copy of a spec dataclass with every free-text field made printable (names and
    targets are validated separately, against NAME_RE and the import syntax)."""
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, str) and f.name not in ("name", "target"):
            changes[f.name] = printable(value)
        elif isinstance(value, dict):
            changes[f.name] = {printable(str(k)): v for k, v in value.items()}
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = printable_fields(value)
    return dataclasses.replace(obj, **changes)


def import_target(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ZooError(f"bad import target {target!r}: expected 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ZooError(f"cannot import {module_name!r} for {target!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ZooError(f"{module_name!r} has no attribute {attr!r} (from {target!r})") from None


@dataclass(frozen=True)
class FamilySpec:
    """A model family, described without importing it.

    ``target`` names its `zoo.model.GenerativeModel` subclass (imported on first use);
    ``config`` is the schema of its hyperparameters (a `zoo.Config` dataclass, which must be
    importable without torch); ``train`` holds the training settings its paper prefers
    (batch size, image size, ...), which a catalogue recipe can override."""

    name: str
    summary: str
    target: str
    config: type[Config] = Config
    train: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExporterSpec:
    """An export format: ``target`` names ``export(model, out, info) -> list[Path]``."""

    name: str
    summary: str
    suffix: str
    target: str


@dataclass(frozen=True)
class DataSourceSpec:
    """A data source for ``--data``: ``name`` alone (``mnist-5k``), or ``name:ARGUMENT``
    when ``argument`` names what follows the colon (``folder:PATH``). ``target`` names
    ``load(source, *, size, channels, download) -> zoo.data.Dataset``, called with the whole
    ``--data`` text; zoo resizes and converts what it returns."""

    name: str
    summary: str
    target: str
    argument: str = ""


@dataclass(frozen=True)
class LoggerSpec:
    """A training logger for `zoo train --log NAME`: ``target`` names a callable
    ``(run_dir, config, start_step)`` returning a `zoo.loggers.Logger`."""

    name: str
    summary: str
    target: str


@dataclass(frozen=True)
class Weights:
    """Pretrained weights for a catalogue entry: one safetensors file, checked by sha256 and
    size before every use.

    ``file`` is a copy shipped inside a package (an absolute path once the catalogue is
    parsed; registry.toml gives it relative to zoo's ``weights/`` folder); ``url`` is where
    to download it when it is not shipped. ``metrics`` are its `zoo eval` scores.
    """

    sha256: str
    size: int
    file: str = ""
    url: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    hardware: str = ""
    note: str = ""


@dataclass(frozen=True)
class CatalogueEntry:
    """A named, reproducible model: family + data + recipe (+ optional pretrained weights)."""

    name: str
    family: str
    data: str
    summary: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    weights: Weights | None = None
    source: str = "zoo"
