"""Writing samples (PNG grids, .npy/.npz arrays) and reading `--input` images."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data import (
    IMAGE_SUFFIXES,
    convert_channels,
    list_images,
    read_images,
    resize,
    to_float,
    to_uint8,
)
from zoo.errors import UsageError
from zoo.files import atomic_path

OUTPUT_SUFFIXES = (".png", ".npy", ".npz")
# a grid or an .npz is built in memory; past these, write .npy (streamed in chunks)
MAX_GRID, MAX_NPZ = 10_000, 200_000


def check_size(path: Path, n: int) -> None:
    """Refuse what only .npy can hold, before anything is sampled."""
    suffix = path.suffix.lower()
    limit = {".png": MAX_GRID, ".npz": MAX_NPZ}.get(suffix)
    if limit is not None and n > limit:
        raise UsageError(
            f"-n {n:,} is too many for one {suffix} (at most {limit:,}); write a .npy file, "
            "which is streamed to disk"
        )


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


def grid(images: torch.Tensor, nrow: int = 0, padding: int = 2) -> np.ndarray:
    """uint8 (H, W, C) mosaic of images in [-1, 1]; ``nrow`` images per row (0: square)."""
    from torchvision.utils import make_grid

    nrow = nrow or math.ceil(math.sqrt(len(images)))
    g = make_grid(to_uint8(images), nrow=nrow, padding=padding, pad_value=0)
    return g.permute(1, 2, 0).numpy()


def save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    mode_array = array[..., 0] if array.shape[-1] == 1 else array
    with atomic_path(path) as tmp:
        Image.fromarray(mode_array).save(tmp, format="PNG")


def check_output(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"cannot write {path.name}: use a {', '.join(OUTPUT_SUFFIXES)} file name")


def save_samples(
    path: Path, images: torch.Tensor, nrow: int = 0, labels: torch.Tensor | None = None
) -> None:
    """A PNG grid, or the raw images: .npy (uint8 NCHW) or .npz (images + labels)."""
    check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        # make_grid repeats one channel to three; keep grey images grey
        array = grid(images, nrow)
        save_png(path, array[..., :1] if images.shape[1] == 1 else array)
        return
    data = to_uint8(images).numpy()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if suffix == ".npy":
            np.save(f, data)
        else:
            arrays: dict[str, Any] = {"images": data}
            if labels is not None:
                arrays["labels"] = labels.numpy()
            np.savez_compressed(f, **arrays)


def load_inputs(paths: list[Path], channels: int, size: int) -> torch.Tensor:
    """Images from files or folders, as floats in [-1, 1] at the model's size and channels."""
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
    images = torch.from_numpy(read_images(files, channels, size))
    return to_float(resize(convert_channels(images, channels), size))
