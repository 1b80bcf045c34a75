"""Typed settings: the schemas of training settings and of every family's hyperparameters,
and `--set key=value` overrides validated against them.

A schema is a dataclass derived from `Config` whose fields are declared with `setting`: a
default (whose type is the field's type), one line of help, and a valid range or a list of
choices. `zoo info` lists the fields, `--set`, catalogue entries and saved configs are checked
against them, and a schema can add rules between fields (`Config.check`). Schemas are plain
dataclasses rather than pydantic models: no dependency, nothing to import at start-up (this
module never imports torch), and the checks zoo needs (types, ranges, choices) are a page.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from zoo.errors import UsageError


def setting(
    default: Any,
    help: str,
    range: str = "",
    choices: Collection[str] = (),
    *,
    sampling: bool = False,
) -> Any:
    """A schema field: ``default`` (its type is the field's type), one line of ``help``, and
    a valid ``range`` ('> 0', '>= 1', '[0, 1)'; for lists, of each element) or ``choices``.
    ``sampling``: a default of sampling only (a diffusion model's number of steps), which
    training never reads, so a published model may take it from its recipe after training."""
    meta = {"help": help, "range": range, "choices": tuple(choices), "sampling": sampling}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Field:
    """One setting of a schema, as `zoo info` shows it."""

    name: str
    type: str
    default: Any
    help: str
    range: str = ""
    choices: tuple[str, ...] = ()
    sampling: bool = False

    def constraint(self) -> str:
        """The valid values in words: a range such as '>= 1', or 'fit | odd | pad'."""
        return self.range or " | ".join(self.choices)


@dataclass(frozen=True)
class Config:
    """Base of every schema: subclass it as a dataclass of `setting` fields."""

    @classmethod
    def fields(cls) -> list[Field]:
        out = []
        for f in dataclasses.fields(cls):
            default = f.default_factory() if callable(f.default_factory) else f.default
            meta = f.metadata
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            out.append(
                Field(
                    f.name,
                    kind,
                    default,
                    meta.get("help", ""),
                    meta.get("range", ""),
                    tuple(meta.get("choices", ())),
                    meta.get("sampling", False),
                )
            )
        return out

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """A fresh dict of every field's default."""
        return {f.name: f.default for f in cls.fields()}

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check(cls, values: dict[str, Any], explicit: Collection[str]) -> None:
        """Rules between fields, raising UsageError. ``values`` is the whole merged config,
        ``explicit`` the keys a recipe or `--set` gave (not defaults). None by default."""

    @classmethod
    def resolve(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        """The defaults updated with ``values``, every key, type, range, choice and rule
        checked."""
        merged = merge(cls.defaults(), values, where, cls)
        cls.check(merged, values.keys())
        return merged

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainSettings(Config):
    """How long and how a run trains; the family's hyperparameters live in its config."""

    steps: int = setting(2000, "generator (or model) updates to train for", ">= 1")
    epochs: float = setting(
        0.0, "when > 0, train for this many passes over the data instead of steps", ">= 0"
    )
    batch_size: int = setting(64, "images per step (per critic step for WGAN)", ">= 1")
    image_size: int = setting(0, "resize the data to this size; 0 keeps its own", "[0, 4096]")
    channels: int = setting(0, "convert the data to 1 or 3 channels; 0 keeps its own", "[0, 3]")
    sample_every: int = setting(500, "write a sample grid every this many steps", ">= 1")
    checkpoint_every: int = setting(1000, "save a checkpoint every this many steps", ">= 1")
    log_every: int = setting(50, "log metrics every this many steps", ">= 1")
    keep_checkpoints: int = setting(2, "how many of the latest checkpoints to keep", ">= 1")
    memory_format: str = setting(
        "auto",
        "layout of image tensors; auto: channels_last on CUDA, contiguous on the CPU",
        choices=("auto", "channels_last", "contiguous"),
    )
    auto_bf16: bool = setting(
        False,
        "--precision auto may train in bf16 on a CPU that computes it natively (AMX, AVX-512 "
        "BF16) where a measurement at the start shows it faster; recipes set it once their "
        "quality was shown to hold in bf16",
    )


def parse_value(text: str) -> Any:
    """Parse a `--set` value as TOML (numbers, booleans, lists), else keep the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "steps=10"]`` -> ``{"lr": 0.001, "steps": 10}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if "\n" in item or "\r" in item:  # a pasted block would lose its later lines
            raise UsageError(f"bad --set {item!r}: one KEY=VALUE per --set, on one line")
        if not sep or not key.strip():
            raise UsageError(f"bad --set {item!r}: expected KEY=VALUE, e.g. --set lr=0.0002")
        out[key.strip()] = parse_value(value.strip())
    return out


def coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Check ``value`` against the type of ``default``; ints widen to floats, lists to tuples."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise UsageError(f"bad value {value} for {key!r} in {where}: it must be finite")
    elif isinstance(default, tuple):  # fixed-length pairs such as Adam's betas
        ok = isinstance(value, list | tuple) and len(value) == len(default)
        if ok:
            value = tuple(
                coerce(f"{key}[{i}]", v, d, where) for i, (v, d) in enumerate(zip(value, default))
            )
    elif isinstance(default, list):  # any length, elements like the default's (layer widths)
        ok = isinstance(value, list | tuple) and len(value) > 0
        if ok and default:
            value = [coerce(f"{key}[{i}]", v, default[0], where) for i, v in enumerate(value)]
    else:
        ok = isinstance(value, type(default))
        if ok and isinstance(value, str) and ("\n" in value or "\r" in value):
            raise UsageError(f"bad value for {key!r} in {where}: one line, please")
    if not ok:
        raise UsageError(
            f"bad value {value!r} for {key!r} in {where}: expected "
            f"{type(default).__name__} like {default!r}"
        )
    return value


_LIMIT = re.compile(
    r"^(?:(?P<op>>=|>|<=|<) *(?P<bound>\S+)"
    r"|(?P<lo_kind>[\[(])(?P<lo>[^,]+), *(?P<hi>[^\])]+)(?P<hi_kind>[\])]))$"
)


_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def within(value: float, limit: str) -> bool:
    """Whether ``value`` satisfies ``limit``: '> 0', '>= 1', '< 1', or an interval such as
    '[0, 1)' (brackets include the bound, parentheses exclude it)."""
    m = _LIMIT.match(limit)
    if m is None:
        raise ValueError(f"bad limit {limit!r}")
    if m["op"]:
        return _COMPARE[m["op"]](value, float(m["bound"]))
    above = (operator.ge if m["lo_kind"] == "[" else operator.gt)(value, float(m["lo"]))
    below = (operator.le if m["hi_kind"] == "]" else operator.lt)(value, float(m["hi"]))
    return above and below


def check_schema(schema: Any, where: str) -> None:
    """Refuse a schema that is not a `Config` dataclass, or whose defaults break its own
    ranges and choices: a plugin's mistake, reported before it confuses a user."""
    if not (isinstance(schema, type) and issubclass(schema, Config)):
        raise UsageError(f"{where}: config must be a zoo.Config subclass, got {schema!r}")
    if "__dataclass_fields__" not in vars(schema):  # a subclass must be a dataclass itself
        raise UsageError(f"{where}: config {schema.__name__} must be a @dataclass")
    missing = [f.name for f in schema.fields() if not f.help]
    if missing:
        raise UsageError(f"{where}: setting {missing[0]!r} has no help; use zoo.setting()")
    check_values(schema.defaults(), schema, f"the defaults of {where}")


def check_values(values: dict[str, Any], schema: type[Config], where: str) -> None:
    """Refuse a number (or a list element) outside its field's range, or a string that is not
    one of its field's choices, naming what is valid."""
    declared = {f.name: f for f in schema.fields()}
    for key, value in values.items():
        f = declared.get(key)
        if f is None:
            continue
        if f.choices and value not in f.choices:
            raise UsageError(
                f"bad value {value!r} for {key!r} in {where}: choose from {', '.join(f.choices)}"
            )
        items = value if isinstance(value, list | tuple) else [value]
        for item in items if f.range else []:
            number = isinstance(item, int | float) and not isinstance(item, bool)
            if number and not within(item, f.range):
                shown = f.range if f.range[0] in "<>" else f"in {f.range}"
                raise UsageError(f"bad value {item} for {key!r} in {where}: it must be {shown}")


# what an empty list of keys means: a family that declares no settings (docs/plugins.md)
NO_KEYS = (
    "none (a family declares its settings as a zoo.Config dataclass, FamilySpec(config=...); "
    "see 'Migrating' in docs/plugins.md)"
)


def merge(
    base: dict[str, Any], overrides: dict[str, Any], where: str, schema: type[Config]
) -> dict[str, Any]:
    """``base`` updated with ``overrides``; unknown keys, wrong types and values outside the
    ``schema``'s ranges and choices are usage errors."""
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise UsageError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in {where}; valid keys: {', '.join(sorted(base)) or NO_KEYS}"
        )
    out = dict(base)
    for key, value in overrides.items():
        out[key] = coerce(key, value, base[key], where)
    check_values({k: out[k] for k in overrides}, schema, where)
    return out


def split_overrides(
    overrides: dict[str, Any], family_keys: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `--set` values into training settings and family config, rejecting unknown keys."""
    train_keys = set(TrainSettings.keys())
    unknown = sorted(set(overrides) - train_keys - set(family_keys))
    if unknown:
        raise UsageError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in --set; valid keys: {', '.join(sorted(train_keys | set(family_keys))) or NO_KEYS}"
        )
    train = {k: v for k, v in overrides.items() if k in train_keys}
    config = {k: v for k, v in overrides.items() if k not in train_keys}
    return train, config
