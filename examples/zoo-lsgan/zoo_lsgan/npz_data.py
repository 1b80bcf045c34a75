"""`--data npz:FILE.npz`: images (uint8, NCHW) and optional integer ``labels`` from a NumPy
.npz file, such as `zoo sample ... --out samples.npz` writes. Imported only when used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import Dataset, held_out_split
from zoo.errors import UsageError


def load(source: str, **_: Any) -> Dataset:
    path = Path(source.removeprefix("npz:")).expanduser()
    if not path.is_file():
        raise UsageError(f"{path} does not exist; expected --data npz:FILE.npz")
    try:
        with np.load(path, allow_pickle=False) as arrays:  # no pickled objects from files
            images = arrays["images"]
            labels = arrays.get("labels")
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot read {path}: {exc} (expected an 'images' array)") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise UsageError(
            f"{path}: 'images' must be uint8 (N, C, H, W) with 1 or 3 channels "
            f"(got {images.dtype} {images.shape})"
        )
    classes: list[str] = []
    if labels is not None:
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or labels.min() < 0:
            raise UsageError(f"{path}: 'labels' must be one non-negative integer per image")
        classes = [str(c) for c in range(int(labels.max()) + 1)]
    train, test = held_out_split(images, labels)
    return Dataset(f"npz:{path}", train, test, classes)
