"""Data sets by name: a ``--data`` source resolved through the registry's data sources (the
built-ins register exactly as a plugin's do), checked and conformed to the size and channels
asked. It sits above zoo.data.loading (images, splits and the loaders of the built-in sources) and
zoo.registry.discovery, so neither of them needs the other."""

from __future__ import annotations

import torch

from zoo.contract.imagesets import Dataset, ImageSet
from zoo.data.loading import _conform
from zoo.errors import UsageError, ZooError
from zoo.registry.discovery import get_registry


def unpaired(source: str, *, size: int = 0, channels: int = 0, download: bool = True) -> Dataset:
    """unpaired:A,B: two sources as the two domains of an unpaired translation."""
    parts = source.removeprefix("unpaired:").split(",")
    if len(parts) != 2:
        raise UsageError(f"bad data {source!r}: expected unpaired:SOURCE_A,SOURCE_B")
    a, b = (
        load_dataset(p.strip(), image_size=size, channels=channels, download=download)
        for p in parts
    )
    if a.spec.size != b.spec.size or a.spec.channels != b.spec.channels:
        raise UsageError(f"the domains of {source!r} differ in shape; pass --set image_size=N")
    return Dataset(source, a.train, a.test, a.classes, b.train, b.test)


def load_dataset(
    source: str, *, image_size: int = 0, channels: int = 0, download: bool = True
) -> Dataset:
    """Load a data source (a ``register_data_sources`` registration: ``zoo plugins``) by
    name, resized and converted as asked."""
    registry = get_registry()
    spec, load = registry.data_source(source)
    ds = load(source, size=image_size, channels=channels, download=download)
    record = registry.plugin_of("data source", spec.name)
    who = f"data source {source!r} of {record.origin() if record else 'an unknown plugin'}"
    if not isinstance(ds, Dataset):
        raise ZooError(f"{who} returned {type(ds).__name__}, not a Dataset")
    for part in (ds.train, ds.test, ds.train_b, ds.test_b):
        if part is not None:
            _check_images(part, who)
    if len(ds.train) == 0:
        raise UsageError(f"data source {source!r} has no training images")
    train_b, test_b = (
        None if s is None else _conform(s, image_size, channels) for s in (ds.train_b, ds.test_b)
    )
    return Dataset(
        ds.name,
        _conform(ds.train, image_size, channels),
        _conform(ds.test, image_size, channels),
        ds.classes,
        train_b,
        test_b,
    )


def _check_images(part: ImageSet, who: str) -> None:
    """What a data source hands over: uint8 NCHW images (whose values cannot leave [0, 255])
    and one int64 label per image, or none."""
    images, labels = part.images, part.labels
    if not (torch.is_tensor(images) and images.dtype == torch.uint8 and images.dim() == 4):
        kind = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images)
        raise ZooError(f"{who} returned images of {kind}; a data source gives uint8 (N, C, H, W)")
    if not 1 <= images.shape[1] <= 4:
        raise ZooError(f"{who} returned images of {images.shape[1]} channels; give 1 to 4")
    if labels is not None and not (
        torch.is_tensor(labels) and labels.dtype == torch.int64 and labels.shape == images.shape[:1]
    ):
        raise ZooError(f"{who} returned labels that are not one int64 per image")
