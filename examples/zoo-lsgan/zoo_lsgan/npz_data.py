"""`--data npz:FILE.npz`: images (uint8, NCHW) and optional integer ``labels`` from a NumPy
.npz file, such as `zoo sample ... --out samples.npz` writes. Imported only when used."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import MAX_DATA_BYTES, Dataset, held_out_split
from zoo.errors import UsageError


def _check_sizes(path: Path) -> None:
    """Read each array's header inside the zip before loading anything: a small compressed
    file can hold an array of any size, and only what fits zoo's data budget is loaded."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                size = math.prod(shape) * dtype.itemsize
                if size > MAX_DATA_BYTES:
                    raise UsageError(
                        f"{path}: {member.filename} holds {size / 2**30:.1f} GiB of data, over "
                        f"zoo's limit of {MAX_DATA_BYTES / 2**30:.0f} GiB"
                    )
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc} (expected an .npz file)") from None


def load(source: str, **_: Any) -> Dataset:
    path = Path(source.removeprefix("npz:")).expanduser()
    if not path.is_file():
        raise UsageError(f"{path} does not exist; expected --data npz:FILE.npz")
    _check_sizes(path)
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
