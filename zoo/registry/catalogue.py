"""The catalogue of named models: registry.toml plus what plugins register."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from zoo.base.settings import TrainSettings, merge
from zoo.contract.specs import NAME_RE, CatalogueEntry, Weights
from zoo.errors import UsageError

ENTRY_KEYS = {"family", "data", "summary", "train", "config", "weights"}
WEIGHT_KEYS = {"file", "url", "sha256", "size", "metrics", "train_seconds", "hardware", "note"}
MAX_WEIGHTS_BYTES = 1 << 36  # 64 GiB: a size beyond this is a typo, not a model


def shipped_weights_dir() -> Path:
    """Where zoo's own pretrained weights live (``weights/`` in the repository and the wheel)."""
    return Path(str(resources.files("zoo").joinpath("weights")))


def validate_entry(entry: CatalogueEntry) -> None:
    """Check the parts of an entry that need no family code: names, data, train keys, weights."""
    where = f"catalogue entry {entry.name!r}"
    if not NAME_RE.match(entry.name):
        raise UsageError(f"bad model name {entry.name!r}: use lower-case letters, digits, '-'")
    if not isinstance(entry.family, str) or not entry.family:
        raise UsageError(f"{where} needs a family name")
    if not isinstance(entry.data, str) or not entry.data:
        raise UsageError(f'{where} needs a data source, e.g. data = "mnist-5k"')
    merge(TrainSettings.defaults(), entry.train, f"the train table of {where}", TrainSettings)
    w = entry.weights
    if w is not None:
        if (
            not isinstance(w.sha256, str)
            or len(w.sha256) != 64
            or w.sha256.strip("0123456789abcdef")
        ):
            raise UsageError(f"{where}: weights.sha256 must be 64 lower-case hex digits")
        if (
            not isinstance(w.size, int)
            or isinstance(w.size, bool)
            or not 0 < w.size <= MAX_WEIGHTS_BYTES
        ):
            raise UsageError(f"{where}: weights.size must be the file's size in bytes")
        if not w.file and not w.url:
            raise UsageError(f"{where}: weights need a shipped file or a url to download from")
        if w.url and not w.url.startswith(("http://", "https://")):
            raise UsageError(f"{where}: weights.url must be http:// or https:// (got {w.url!r})")
        bad = [
            k for k, v in w.metrics.items() if not isinstance(v, int | float) or isinstance(v, bool)
        ]
        if bad:
            raise UsageError(f"{where}: weights.metrics.{bad[0]} must be a number")


def parse_catalogue(text: str, source: str, base: Path | None = None) -> list[CatalogueEntry]:
    """Parse a registry.toml document; errors name the entry and list the valid keys.

    Relative ``weights.file`` paths are resolved against ``base`` (the folder of shipped
    weights), so entries always carry absolute paths."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source} is not valid TOML: {exc}") from None
    unknown_top = sorted(set(doc) - {"models"})
    if unknown_top:
        raise UsageError(f"unknown table(s) {', '.join(unknown_top)} in {source}; valid: models")
    entries = []
    for name, table in doc.get("models", {}).items():
        where = f"[models.{name}] in {source}"
        if not isinstance(table, dict):
            raise UsageError(f"{where} must be a table")
        unknown = sorted(set(table) - ENTRY_KEYS)
        if unknown:
            raise UsageError(
                f"unknown key(s) {', '.join(unknown)} in {where}; "
                f"valid keys: {', '.join(sorted(ENTRY_KEYS))}"
            )
        for key in ("train", "config", "weights"):
            if key in table and not isinstance(table[key], dict):
                raise UsageError(f"{key} in {where} must be a table")
        weights = None
        if "weights" in table:
            w = dict(table["weights"])
            bad = sorted(set(w) - WEIGHT_KEYS)
            missing = sorted({"sha256", "size"} - set(w))
            if bad or missing:
                raise UsageError(
                    f"weights in {where}: unknown {bad} / missing {missing}; "
                    f"valid keys: {', '.join(sorted(WEIGHT_KEYS))}"
                )
            if not isinstance(w.get("metrics", {}), dict):
                raise UsageError(f"weights.metrics in {where} must be a table")
            if w.get("file") and base is not None:
                w["file"] = str(base / w["file"])
            weights = Weights(**w)
        entry = CatalogueEntry(
            name=name,
            family=table.get("family", ""),
            data=table.get("data", ""),
            summary=table.get("summary", ""),
            train=dict(table.get("train", {})),
            config=dict(table.get("config", {})),
            weights=weights,
            source=source,
        )
        validate_entry(entry)
        entries.append(entry)
    return entries


def load_catalogue_file(path: str | Path) -> list[CatalogueEntry]:
    """Entries from a registry.toml on disk (plugins can ship their own)."""
    path = Path(path)
    return parse_catalogue(path.read_text(encoding="utf-8"), str(path), path.parent / "weights")


def builtin_catalogue() -> list[CatalogueEntry]:
    text = resources.files("zoo").joinpath("registry.toml").read_text(encoding="utf-8")
    return parse_catalogue(text, "registry.toml", shipped_weights_dir())


def entry_to_dict(entry: CatalogueEntry) -> dict[str, Any]:
    out = {
        "name": entry.name,
        "family": entry.family,
        "data": entry.data,
        "summary": entry.summary,
        "train": entry.train,
        "config": entry.config,
        "source": entry.source,
    }
    if entry.weights:
        out["weights"] = dict(entry.weights.__dict__)
    return out
