"""Where a model's weights come from: one place turns any source into a verified local file.

A source is a run directory (its newest checkpoint), a checkpoint folder, a ``.safetensors``
or ``.onnx`` file, an http(s) URL of a ``.safetensors`` file, or a catalogue name. A name
means its pretrained weights: the copy shipped inside the package when there is one, else the
cache, else a download (from ``ZOO_WEIGHTS_URL`` when that mirror is set); each is checked
against the catalogue's size and sha256 before use. A name without pretrained weights falls
back to its run in ``runs/NAME``. `zoo sample`, `export`, `eval`, `zoo.api.load` and
torch.hub all resolve through `resolve`, and report its ``origin``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from zoo.base.files import sha256_file, write_text
from zoo.contract.specs import CatalogueEntry
from zoo.errors import UsageError, ZooError
from zoo.store.download import (
    DownloadError,
    DownloadOptions,
    check_file,
    copy_verified,
    fetch,
    offline,
    redact,
    weights_dir,
)

MODEL_SUFFIXES = (".safetensors", ".onnx")


@dataclass(frozen=True)
class Resolved:
    """A local weights (or ONNX) file and a phrase saying where it came from."""

    path: Path
    origin: str


def runs_dir() -> Path:
    return Path(os.environ.get("ZOO_RUNS", "runs"))


def cache_path(entry: CatalogueEntry) -> Path:
    """The cached copy of an entry's downloaded weights; the hash in the name keeps versions
    apart."""
    assert entry.weights is not None
    return weights_dir() / f"{entry.name}-{entry.weights.sha256[:12]}.safetensors"


def download_url(entry: CatalogueEntry) -> str:
    """The entry's URL, or its place under the ZOO_WEIGHTS_URL mirror: MIRROR/NAME/FILE."""
    assert entry.weights is not None
    mirror = os.environ.get("ZOO_WEIGHTS_URL", "").strip()
    if mirror:
        filename = Path(entry.weights.file or entry.weights.url).name or "model.safetensors"
        return f"{mirror.rstrip('/')}/{entry.name}/{filename}"
    if not entry.weights.url:
        raise ZooError(
            f"{entry.name}'s weights ship with {entry.source} but the copy is missing or "
            f"corrupt and there is no URL to download them from; reinstall {entry.source}"
        )
    return entry.weights.url


def pretrained(
    entry: CatalogueEntry, *, force: bool = False, options: DownloadOptions | None = None
) -> Resolved:
    """The entry's pretrained weights as a verified local file, downloading when needed."""
    w = entry.weights
    if w is None:
        raise UsageError(
            f"{entry.name} has no pretrained weights; train it with `zoo train {entry.name}`"
        )
    if w.file and not force:
        shipped = Path(w.file)
        if shipped.is_file():
            problem = check_file(shipped, w.sha256, w.size)
            if problem is None:
                return Resolved(shipped, f"pretrained {entry.name} weights shipped with zoo")
            print(f"zoo: the shipped {shipped} is damaged: {problem}", file=sys.stderr)
    cached = cache_path(entry)
    if cached.is_file() and not force:
        problem = check_file(cached, w.sha256, w.size)
        if problem is None:
            return Resolved(cached, f"pretrained {entry.name} weights from the cache")
        if offline():
            raise DownloadError(
                f"the cached {cached} is damaged ({problem}) and ZOO_OFFLINE is set; unset it "
                f"to download {entry.name} again"
            )
        print(
            f"zoo: the cached {cached} is damaged ({problem}); downloading again", file=sys.stderr
        )
        cached.unlink()
    url = download_url(entry)
    label = f"{entry.name} weights"
    path = fetch(
        url, cached, sha256=w.sha256, size=w.size, label=label, options=options, force=force
    )
    return Resolved(path, f"pretrained {entry.name} weights downloaded from {redact(url)}")


def fill_cache(entry: CatalogueEntry, source: Path) -> Resolved:
    """`zoo download NAME --from FILE`: a copied file, verified, into the cache."""
    w = entry.weights
    if w is None:
        raise UsageError(f"{entry.name} has no pretrained weights in the catalogue")
    path = copy_verified(source, cache_path(entry), w.sha256, w.size, f"{entry.name}'s weights")
    return Resolved(path, f"pretrained {entry.name} weights copied from {source}")


def _from_url(url: str, options: DownloadOptions | None) -> Resolved:
    """A URL's file, cached by the URL; its sha256 recorded beside it and checked on reuse."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(url.split("?")[0]).name
    if not name.endswith(".safetensors"):
        raise UsageError(f"{url}: a URL source must name a .safetensors file")
    dest = weights_dir() / "urls" / key / name
    stamp = dest.with_name(dest.name + ".sha256")
    shown = redact(url)
    if dest.is_file() and stamp.is_file():
        expected = stamp.read_text().strip()
        if check_file(dest, expected, None) is None:
            return Resolved(dest, f"weights from {shown} (cached)")
        dest.unlink()
    fetch(url, dest, sha256=None, size=None, label=name, options=options, force=True)
    problem = _unreadable_safetensors(dest)
    if problem:  # never stamped, so never reused
        dest.unlink()
        raise DownloadError(f"{shown} is not a safetensors file ({problem}); nothing was kept")
    write_text(stamp, sha256_file(dest) + "\n")
    return Resolved(dest, f"weights downloaded from {shown}")


def _unreadable_safetensors(path: Path) -> str | None:
    """Why ``path`` does not open as safetensors (header and tensor offsets), or None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        return str(exc).splitlines()[0][:200]
    return None


def _from_path(path: Path) -> Resolved:
    if path.is_dir():
        from zoo.base.runs import latest_checkpoint

        ckpt = latest_checkpoint(path) if (path / "checkpoints").is_dir() else path
        if ckpt is None or not (ckpt / "model.safetensors").is_file():
            raise UsageError(f"{path} holds no checkpoint yet; train it first")
        weights = ckpt / "model.safetensors"
        return Resolved(weights, f"the run {path} ({ckpt.name if ckpt != path else 'checkpoint'})")
    if path.suffix not in MODEL_SUFFIXES:
        raise UsageError(
            f"{path} is not a model: expected a run directory, .safetensors or .onnx file"
        )
    return Resolved(path, str(path))


def resolve(source: str | Path, *, options: DownloadOptions | None = None) -> Resolved:
    """Any source -> a local file to load (see the module docstring for the order)."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return _from_url(text, options)
    path = Path(source)
    if path.exists():
        return _from_path(path)
    from zoo.registry.discovery import get_registry

    reg = get_registry()
    entry = reg.catalogue.get(text)
    if entry is not None:
        if entry.weights is not None:
            return pretrained(entry, options=options)
        run = runs_dir() / text
        if run.is_dir():
            return _from_path(run)
        raise UsageError(
            f"{text} has no pretrained weights and no run in {run}: train it with "
            f"`zoo train {text}`"
        )
    if "://" in text:
        raise UsageError(f"cannot load {redact(text)}: only http:// and https:// URLs are fetched")
    if os.sep in text or text.endswith(MODEL_SUFFIXES):
        raise UsageError(f"{source} does not exist")
    reg.model(text)  # unknown name: suggests close ones
    raise AssertionError("unreachable")
