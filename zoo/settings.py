"""Training settings and `--set key=value` overrides, validated against their defaults."""

from __future__ import annotations

import math
import operator
import re
import tomllib
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from zoo.errors import UsageError


@dataclass
class TrainSettings:
    """How long and how a run trains; the family's hyperparameters live in its config."""

    # valid ranges (see check_limits); the rest is checked where it is used
    limits: ClassVar[dict[str, str]] = {
        "steps": ">= 1",
        "epochs": ">= 0",
        "batch_size": ">= 1",
        "image_size": "[0, 4096]",
        "sample_every": ">= 1",
        "checkpoint_every": ">= 1",
        "log_every": ">= 1",
        "keep_checkpoints": ">= 1",
    }

    steps: int = 2000
    epochs: float = 0.0  # when > 0, overrides steps: epochs * len(train) / batch_size
    batch_size: int = 64
    image_size: int = 0  # 0 keeps the data's own size
    channels: int = 0  # 0 keeps the data's own channels; 1 or 3 converts
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 50
    keep_checkpoints: int = 2

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def check_limits(values: dict[str, Any], limits: dict[str, str], where: str) -> None:
    """Refuse a number (or a list element) outside its declared range, naming the range."""
    for key, value in values.items():
        limit = limits.get(key)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items if limit else []:
            number = isinstance(item, int | float) and not isinstance(item, bool)
            if number and not within(item, limit):
                shown = limit if limit[0] in "<>" else f"in {limit}"
                raise UsageError(f"bad value {item} for {key!r} in {where}: it must be {shown}")


def merge(
    base: dict[str, Any],
    overrides: dict[str, Any],
    where: str,
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``base`` updated with ``overrides``; unknown keys, wrong types and values outside
    ``limits`` are usage errors."""
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise UsageError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in {where}; valid keys: {', '.join(sorted(base))}"
        )
    out = dict(base)
    for key, value in overrides.items():
        out[key] = coerce(key, value, base[key], where)
    check_limits({k: out[k] for k in overrides}, limits or {}, where)
    return out


def split_overrides(
    overrides: dict[str, Any], family_defaults: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `--set` values into training settings and family config, rejecting unknown keys."""
    train_keys = set(TrainSettings.keys())
    unknown = sorted(set(overrides) - train_keys - set(family_defaults))
    if unknown:
        raise UsageError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in --set; valid keys: {', '.join(sorted(train_keys | set(family_defaults)))}"
        )
    train = {k: v for k, v in overrides.items() if k in train_keys}
    config = {k: v for k, v in overrides.items() if k not in train_keys}
    return train, config
