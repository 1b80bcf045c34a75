"""Pretrained weights: downloaded once into the cache, verified by sha256, never unpickled.

A download streams into a temporary file beside its final name and is renamed into place only
after its hash matches, so a failed or interrupted download leaves nothing in the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from zoo.errors import UsageError, ZooError
from zoo.files import atomic_path
from zoo.specs import CatalogueEntry

CHUNK = 1 << 20


def cache_dir() -> Path:
    """zoo's cache: downloaded weights and ONNX exports made for sampling ($ZOO_CACHE)."""
    return Path(os.environ.get("ZOO_CACHE", Path.home() / ".cache" / "zoo"))


def weights_dir() -> Path:
    return cache_dir() / "weights"


def cache_path(entry: CatalogueEntry) -> Path:
    assert entry.weights is not None
    return weights_dir() / f"{entry.name}-{entry.weights.sha256[:12]}.safetensors"


def cached_weights(entry: CatalogueEntry) -> Path | None:
    if entry.weights is None:
        return None
    path = cache_path(entry)
    return path if path.is_file() else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(entry: CatalogueEntry, *, force: bool = False, timeout: float = 60.0) -> Path:
    """Fetch ``entry``'s pretrained weights into the cache and return their path."""
    if entry.weights is None:
        raise UsageError(
            f"{entry.name} has no pretrained weights in the catalogue; train it with "
            f"`zoo train {entry.name}`"
        )
    path = cache_path(entry)
    if path.is_file() and not force:
        return path
    url, expected = entry.weights.url, entry.weights.sha256
    with atomic_path(path) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
                shutil.copyfileobj(response, f, CHUNK)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ZooError(f"cannot download {entry.name} weights from {url}: {exc}") from None
        actual = sha256_file(tmp)
        if actual != expected:
            raise ZooError(
                f"downloaded {entry.name} weights have sha256 {actual[:16]}..., expected "
                f"{expected[:16]}...; nothing was kept (retry, or report a bad catalogue entry)"
            )
    return path
