"""Writing sampled images without torch: PNG grids, .npy/.npz arrays of uint8 NCHW images, and
GIF / WebP animations of interpolations and walks.
`zoo.data.images` writes torch tensors through these, and ONNX sampling without torch
(zoo/runtime/onnx_sampling.py) uses them directly."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from zoo.base.files import atomic_path
from zoo.errors import UsageError

OUTPUT_SUFFIXES = (".png", ".npy", ".npz", ".gif", ".webp")
ANIMATIONS = (".gif", ".webp")
FRAME_MS = 80  # per frame: 12.5 frames a second
MIN_SIDE = 112  # animations are enlarged (nearest neighbour) to at least this many pixels
# a grid or an .npz is built in memory; past these, write .npy (streamed in chunks)
MAX_GRID, MAX_NPZ = 10_000, 200_000


def check_output(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"cannot write {path.name}: use a {', '.join(OUTPUT_SUFFIXES)} file name")


def check_size(path: Path, n: int) -> None:
    """Refuse what only .npy can hold, before anything is sampled."""
    suffix = path.suffix.lower()
    limit = {".png": MAX_GRID, ".npz": MAX_NPZ}.get(suffix)
    if limit is not None and n > limit:
        raise UsageError(
            f"{n:,} images are too many for one {suffix} (at most {limit:,}); write a .npy file, "
            "which is streamed to disk"
        )


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounding half to even as torch's `to_uint8` does
    (zoo.contract.imagesets)."""
    scaled = (images.astype(np.float32) + np.float32(1.0)) * np.float32(127.5)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, nrow: int = 0, padding: int = 2) -> np.ndarray:
    """uint8 (H, W, C) mosaic of uint8 NCHW images, ``nrow`` per row (0: square), black
    ``padding`` around each: torchvision's make_grid layout, which one image skips."""
    n, c, h, w = images.shape
    if n == 1:
        return images[0].transpose(1, 2, 0)
    cols = min(nrow or math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), np.uint8)
    for i, image in enumerate(images):
        y, x = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        out[y : y + h, x : x + w] = image.transpose(1, 2, 0)
    return out


def fit_square(image: Any, size: int) -> Any:
    """A PIL image centre-cropped to a square and resized to ``size`` (LANCZOS): how zoo
    prepares every image it reads (--input files, folder: data, uploads to the server)."""
    from PIL import Image

    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.LANCZOS)


def encode_png(array: np.ndarray) -> bytes:
    """A uint8 (H, W, C) image as PNG bytes (grey for one channel)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(out, format="PNG")
    return out.getvalue()


def save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(array))


def save_arrays(
    path: Path, images: np.ndarray, nrow: int = 0, labels: np.ndarray | None = None
) -> None:
    """uint8 NCHW images as a PNG grid, or as .npy (images) or .npz (images + labels); or, for
    .gif and .webp, an animation whose frame t holds image t of each row of ``nrow``."""
    check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        save_png(path, grid(images, nrow))
        return
    if suffix in ANIMATIONS:
        save_animation(path, images, nrow or len(images))
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if suffix == ".npy":
            np.save(f, images)
        else:
            arrays: dict[str, Any] = {"images": images}
            if labels is not None:
                arrays["labels"] = labels
            np.savez_compressed(f, **arrays)


def save_animation(path: Path, images: np.ndarray, frames: int) -> None:
    """uint8 NCHW images, rows of ``frames`` each (an interpolation or a walk per row), as a
    looping animation: frame t shows image t of every row, one above the other."""
    from PIL import Image

    if len(images) % frames:
        raise UsageError(f"{len(images)} images do not make rows of {frames} frames")
    rows = images.reshape(len(images) // frames, frames, *images.shape[1:])
    scale = max(1, -(-MIN_SIDE // max(images.shape[2:])))  # ceiling division
    pictures = []
    for t in range(frames):
        frame = grid(rows[:, t], 1).repeat(scale, axis=0).repeat(scale, axis=1)
        pictures.append(Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame))
    with atomic_path(path) as tmp:
        pictures[0].save(
            tmp,
            format="GIF" if path.suffix.lower() == ".gif" else "WEBP",
            save_all=True,
            append_images=pictures[1:],
            duration=FRAME_MS,
            loop=0,
            lossless=True,  # WebP; GIF ignores it
        )
