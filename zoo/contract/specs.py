"""What plugins register: small, torch-free descriptions of families, exporters and models."""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from zoo.base.settings import Config
from zoo.errors import ZooError

NUMBER_NAMES = {"int": "an integer", "float": "a number"}
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
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, str) and f.name not in ("name", "target"):
            changes[f.name] = printable(value)
        elif isinstance(value, dict):
            changes[f.name] = {printable(str(k)): v for k, v in value.items()}
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = printable_fields(value)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            changes[f.name] = tuple(printable_fields(v) for v in value)
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
class SampleOption:
    """An option a family's ``sample`` takes: `zoo sample --NAME VALUE` and
    ``zoo.api.sample(options={NAME: VALUE})``. ``type`` is ``"str"``, ``"int"`` or
    ``"float"``; a string takes one of ``choices`` when given (the first is its default, which
    `zoo sample` passes and reports when the option is not given), a number lies in ``range``
    ('>= 2', '(0, 1]', ...).
    For `zoo sample`'s grid and inputs: ``row`` means the value is the number of images in a
    row of the output; ``second_domain`` lists the choices whose inputs come from the second
    domain of a translation model (its held-out images when no --input is given)."""

    name: str
    help: str
    type: str = "str"
    choices: tuple[str, ...] = ()
    range: str = ""
    row: bool = False
    second_domain: tuple[str, ...] = ()

    def check(self, value: Any, family: str) -> Any:
        """``value`` as this option's type, or a UsageError naming what is valid."""
        from zoo.base.settings import within
        from zoo.errors import UsageError

        if self.type in ("int", "float"):
            kinds = int if self.type == "int" else int | float
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise UsageError(f"{self.name} takes {NUMBER_NAMES[self.type]} (got {value!r})")
            if self.type == "float" and not math.isfinite(value):
                raise UsageError(f"{self.name} must be a finite number (got {value})")
            if self.range and not within(value, self.range):
                raise UsageError(f"{self.name} must be {self.range} (got {value})")
            return value if self.type == "int" else float(value)
        value = str(value)
        if self.choices and value not in self.choices:
            raise UsageError(f"bad {self.name} {value!r}: choose from {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class FamilySpec:
    """A model family, described without importing it.

    ``target`` names its `zoo.contract.model.GenerativeModel` subclass (imported on first use);
    ``config`` is the schema of its hyperparameters (a `zoo.Config` dataclass, which must be
    importable without torch); ``train`` holds the training settings its paper prefers
    (batch size, image size, ...), which a catalogue recipe can override.

    ``prior`` names the inference graph that samples draw from when they need nothing but a
    seed: it takes ``z`` (N, latent) from ``torch.randn`` of a generator seeded with the seed
    and, for a conditional family without ``--label``, ``labels`` from ``torch.randint`` of
    the same generator next, and outputs ``image``. Declaring it lets `zoo sample FILE.onnx`
    run without importing torch (zoo/runtime/onnx_sampling.py); `zoo.testing` checks that it gives
    what the family's ``sample`` gives.

    ``multistep`` names instead the graph a diffusion or flow family's sampler calls at every
    step (``denoiser``: ``x``, ``t``[, ``labels``] -> ``prediction``), whose metadata carries
    its `zoo.contract.diffusion.Diffusion`; zoo then runs the sampling loop itself, in either
    runtime, and `zoo sample` needs no torch for it either."""

    name: str
    summary: str
    target: str
    config: type[Config] = Config
    train: dict[str, Any] = field(default_factory=dict)
    sample_options: tuple[SampleOption, ...] = ()
    prior: str = ""
    paper: str = ""  # authors, year and title, for model cards
    multistep: str = ""  # the graph a multi-step sampler runs (zoo.contract.diffusion)

    def check_sample_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked against the declared ones: names, types, choices, ranges."""
        from zoo.errors import UsageError

        declared = {o.name: o for o in self.sample_options}
        for key in options:
            if key not in declared:
                valid = ", ".join(declared) or "none"
                raise UsageError(
                    f"{self.name} does not take the sample option {key!r} (its options: {valid})"
                )
        return {k: declared[k].check(v, self.name) for k, v in options.items()}


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
    ``(run_dir, config, start_step)`` returning a `zoo.training.loggers.Logger`."""

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
