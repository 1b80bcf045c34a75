"""A training run's recipe, resolved before any data is loaded or anything written: a new run
from the catalogue's recipe and ``--set``, or a resumed run from its checkpoint's record
(which may only train longer)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.base.settings import TrainSettings, check_values, merge
from zoo.contract.model import ModelInfo
from zoo.errors import UsageError
from zoo.registry.recipes import recipe_settings, resolve
from zoo.store.checkpoint import read_info


@dataclass
class Plan:
    """A training run's resolved recipe, before the data is loaded."""

    name: str
    family: str
    data: str
    config: dict[str, Any]
    settings: TrainSettings
    seed: int
    precision: str  # auto until the trainer chooses (zoo.training.precision)
    # the measurement behind auto's choice, kept in the record when the run resumes
    precision_images_per_s: dict[str, float] | None = None


def plan_new(
    target: str, data: str | None, overrides: dict[str, Any], seed: int, precision: str
) -> Plan:
    recipe = resolve(target, data)
    settings, config = recipe_settings(recipe, overrides)
    return Plan(
        recipe.name, recipe.family, recipe.data, config, TrainSettings(**settings), seed, precision
    )


def plan_resume(
    checkpoint: Path,
    target: str,
    data: str | None,
    overrides: dict[str, Any],
    seed: int | None,
    precision: str,
) -> Plan:
    """A resumed run keeps everything it started with; only its length may change, and only
    to train more. Anything else given is refused rather than silently ignored."""
    info, _ = read_info(checkpoint / "model.safetensors")
    run = checkpoint.parent.parent
    if target not in (info.name, info.family, str(run)):
        raise UsageError(f"--resume: {run} trains {info.name or info.family}, not {target}")
    record = info.train
    kinds = (("seed", int), ("precision", str), ("settings", dict))
    missing = [key for key, kind in kinds if not isinstance(record.get(key), kind)]
    if missing:
        raise UsageError(
            f"--resume: the checkpoint {checkpoint} records no valid {', '.join(missing)}: it "
            "was not written by zoo train; start a new run with --out DIR"
        )
    check_values(record["settings"], TrainSettings, f"the checkpoint {checkpoint}")
    run_seed, run_precision = record["seed"], record["precision"]
    if seed is not None and seed != run_seed:
        raise UsageError(f"--resume: {run} was started with --seed {run_seed}; drop --seed {seed}")
    if precision not in ("auto", run_precision):
        raise UsageError(f"--resume: {run} trains in {run_precision}; drop --precision {precision}")
    current = {**info.config, **record["settings"]}
    changed = {  # repeating the run's own values changes nothing, so it is no reason to refuse
        key
        for key, value in overrides.items()
        if key not in ("steps", "epochs") and not _same_value(current.get(key, _MISSING), value)
    }
    if changed or data not in (None, info.data):
        raise UsageError(
            f"--resume continues {run} with its own settings; only --steps/--epochs may change "
            f"(got {', '.join(sorted(changed)) or '--data'}); for other settings start a new run "
            "with --out DIR"
        )
    overrides = {k: v for k, v in overrides.items() if k in ("steps", "epochs")}
    _keep_hand_edits(run, info)
    settings = TrainSettings(**merge(record["settings"], overrides, "--set", TrainSettings))
    if settings.epochs <= 0 and settings.steps <= info.step:
        raise UsageError(
            f"--resume: {run} is already at step {info.step}; pass --steps above {info.step} "
            "to train further"
        )
    return Plan(
        info.name,
        info.family,
        info.data,
        info.config,
        settings,
        info.train["seed"],
        info.train["precision"],
        info.train.get("precision_images_per_s"),
    )


_MISSING = object()


def _same_value(current: Any, given: Any) -> bool:
    if isinstance(current, list | tuple) and isinstance(given, list | tuple):
        return list(current) == list(given)
    widened = isinstance(current, float) and type(given) is int  # --set lr=1 for 1.0
    return (type(current) is type(given) or widened) and current == given


def _keep_hand_edits(run: Path, info: ModelInfo) -> None:
    """A run's settings live in its checkpoint, and config.json is rewritten from them: an
    edited config.json is kept aside and said, never silently ignored and overwritten."""
    config = run / "config.json"
    if not config.is_file():
        return
    try:
        written = json.loads(config.read_text(encoding="utf-8"))
        keys = ("family", "name", "data", "config")
        edited = any(written.get(k) != getattr(info, k) for k in keys)
        runs = ({k: v for k, v in t["settings"].items() if k not in ("steps", "epochs")}
                for t in (written["train"], info.train))  # fmt: skip
        edited = edited or next(runs) != next(runs)
        edited = edited or written["train"].get("seed") != info.train.get("seed")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        edited = True
    if edited:
        kept = config.with_name("config.edited.json")
        os.replace(config, kept)
        print(
            f"zoo: {config} was edited by hand; a run's settings live in its checkpoint, so the "
            f"edits have no effect (kept as {kept.name}); to change settings, start a new run "
            "with --set KEY=VALUE",
            file=sys.stderr,
        )
