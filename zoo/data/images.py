"""Writing sampled tensors (through zoo.base.grids, which needs no torch) and reading `--input`
images."""

from __future__ import annotations

import math
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from zoo.base.files import atomic_path
from zoo.base.grids import save_arrays
from zoo.contract.imagesets import to_float, to_uint8
from zoo.data.loading import (
    IMAGE_SUFFIXES,
    convert_channels,
    image_header,
    list_images,
    read_images,
    resize,
)
from zoo.errors import UsageError


def write_npy_stream(
    path: Path, n: int, shape: tuple[int, int, int], chunks: Iterable[torch.Tensor]
) -> None:
    """``n`` uint8 images (NCHW) to a .npy file chunk by chunk, in constant memory; refuses
    at once what the disk cannot hold."""
    need = n * math.prod(shape)
    folder = path.parent if str(path.parent) else Path(".")
    free = shutil.disk_usage(folder if folder.exists() else Path(".")).free
    if need > free:
        raise UsageError(
            f"{n:,} images of {shape[0]}x{shape[1]}x{shape[2]} need {need / 2**30:,.1f} GiB but "
            f"{folder} has {free / 2**30:,.1f} GiB free; lower -n"
        )
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *shape))
        done = 0
        for images in chunks:
            data = to_uint8(images).numpy()
            array[done : done + len(data)] = data
            done += len(data)
        array.flush()
        del array


def save_samples(
    path: Path, images: torch.Tensor, nrow: int = 0, labels: torch.Tensor | None = None
) -> None:
    """A PNG grid, or the raw images: .npy (uint8 NCHW) or .npz (images + labels)."""
    save_arrays(path, to_uint8(images).numpy(), nrow, None if labels is None else labels.numpy())


def load_inputs(paths: list[Path], channels: int, size: int, trained_on: str = "") -> torch.Tensor:
    """Images from files or folders, as floats in [-1, 1] at the model's size and channels.
    Inputs under half the model's size are stretched to it: said on stderr, since such an
    image (a raw 8x8 digit for a model of framed 28x28 ones) looks unlike what it learned."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise UsageError(f"no images found in {p}")
            files += found
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise UsageError(f"{p} is not an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files.append(p)
        else:
            raise UsageError(f"input {p} does not exist")
    small = [f for f in files if min(image_header(f)[:2]) * 2 < size]
    if small:
        names = ", ".join(f.name for f in small[:3]) + (", ..." if len(small) > 3 else "")
        print(
            f"zoo: warning: {len(small)} input(s) ({names}) are under half the model's "
            f"{size}x{size} and are stretched to it; the model learned from "
            f"{trained_on or 'its own data'}, so prepare inputs like those",
            file=sys.stderr,
        )
    images = torch.from_numpy(read_images(files, channels, size))
    return to_float(resize(convert_channels(images, channels), size))
