"""The evaluation classifier: a LeNet-5 whose features and softmax score generated images.

Inception-v3 cannot be downloaded here and fits 28x28 digits poorly, so sample quality is
measured in the features of a small domain classifier (see zoo.evaluation.scores). The shipped one
is trained by `train_classifier` on the training split of mnist-5k only; the 1,000 held-out images
are the reference set. A classifier file is a safetensors with its recipe, data and held-out
accuracy as metadata, and a JSON sidecar pinning the file's sha256, checked on every load.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from torch import nn

from zoo.base.files import write_text
from zoo.contract.imagesets import Dataset, ImageSet, to_float
from zoo.data.sources import load_dataset
from zoo.errors import UsageError, ZooError
from zoo.store.checkpoint import write_safetensors

SIZE = 28  # every image is resized to this before it is classified
KIND = "evaluator"
META_KEY = "zoo.evaluator"
DEFAULT_PATH = Path(__file__).parent / "lenet-mnist.safetensors"
# Sources whose images the shipped classifier may judge: MNIST digits, whatever their split.
DEFAULT_SOURCES = ("mnist-5k", "mnist")
RECIPE: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 2e-3,
    "schedule": "cosine",
    "epochs": 20,
    "batch_size": 64,
    # random affine augmentation: rotation (degrees), scale (fraction), shift (pixels)
    "max_rotate": 10,
    "max_scale": 0.1,
    "max_shift": 2,
}
_BATCH = 500


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: these tiny convolutions are fastest so (thread hand-offs cost
    more than they save, worse on a shared machine) and results do not depend on core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LeNet(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling; 84-d penultimate features."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.fc(self.conv(x))
        return features, self.head(features)


def to_input(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Float images in [-1, 1] at any size -> the classifier's channels at SIZE x SIZE."""
    return conform(images.detach().float().cpu(), channels)


def conform(images: torch.Tensor, channels: int) -> torch.Tensor:
    """`to_input` on any device, keeping gradients (inversion's perceptual loss)."""
    x = images.clamp(-1, 1)
    if x.shape[1] == 3 and channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != channels:
        raise UsageError(
            f"cannot score {x.shape[1]}-channel images with a {channels}-channel classifier"
        )
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(
            x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return x


@dataclass
class Classifier:
    """A trained classifier, its metadata, and (cached) features of its reference set."""

    net: LeNet
    meta: dict[str, Any]
    path: Path
    _reference: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def dataset(self) -> Dataset:
        """The classifier's data, at its size and channels. A classifier file names its own
        reference data, so that data is never downloaded on its word: it must be on this
        machine (the bundled sets, a folder, or torchvision files already under ZOO_DATA)."""
        return _dataset(self.meta["data"], self.channels)

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features and softmax probabilities (float64) of images in [-1, 1]."""
        feats, probs = [], []
        with one_thread():
            for start in range(0, len(images), _BATCH):
                f, logits = self.net(to_input(images[start : start + _BATCH], self.channels))
                feats.append(f.double())
                probs.append(logits.double().softmax(1))
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features of images in [-1, 1] on their own device, differentiable
        with respect to the images (the network's own weights stay fixed)."""
        net = self.net.to(images.device).requires_grad_(False)
        return net(conform(images.float(), self.channels))[0]

    def predict(self, images: torch.Tensor) -> np.ndarray:
        return self.features(images)[1].argmax(1)

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and probabilities of the reference set: its data's held-out split."""
        if self._reference is None:
            self._reference = self.features(to_float(self.dataset().test.images))
        return self._reference

    def describe(self) -> str:
        return (
            f"{self.path.name} (LeNet-5 trained on the training split of {self.meta['data']}, "
            f"held-out accuracy {self.meta['held_out_accuracy']:.4f})"
        )


@functools.lru_cache(maxsize=2)
def _dataset(data: str, channels: int) -> Dataset:
    # parsing the bundled MNIST text takes seconds; the reference and anchors reuse it
    return load_dataset(data, image_size=SIZE, channels=channels, download=False)


def _augment(x: torch.Tensor, r: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
    """Random small rotations, scalings and shifts, filling with the background (-1)."""
    n, _, h, w = x.shape

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * bound

    angle, scale = uniform(math.radians(r["max_rotate"])), 1 + uniform(r["max_scale"])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, uniform(2 * r["max_shift"] / w)], 1),
            torch.stack([sin, cos, uniform(2 * r["max_shift"] / h)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", align_corners=False) - 1


def _accuracy(net: LeNet, images: ImageSet, channels: int) -> float:
    assert images.labels is not None
    clf = Classifier(net.eval(), {"channels": channels}, Path())
    return float((clf.predict(to_float(images.images)) == images.labels.numpy()).mean())


def _fit(net: LeNet, images: torch.Tensor, labels: torch.Tensor, seed: int, log: Any) -> None:
    r = RECIPE
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), r["lr"])
    steps = r["epochs"] * math.ceil(len(images) / r["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for epoch in range(r["epochs"]):
        net.train()
        order = torch.randperm(len(images), generator=generator)
        for i in range(0, len(order), r["batch_size"]):
            idx = order[i : i + r["batch_size"]]
            _, logits = net(_augment(images[idx], r, generator))
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if log:
            log(f"epoch {epoch + 1}/{r['epochs']}: loss {loss.item():.4f}")


def train_classifier(
    data: str = "mnist-5k", out: str | Path = DEFAULT_PATH, seed: int = 0, log: Any = None
) -> Classifier:
    """Train the evaluation classifier on ``data``'s training split with RECIPE and ``seed``;
    write ``out`` and its sha256 sidecar. ``log`` (a print-like callable) reports each epoch."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out}: the classifier is written as a .safetensors file")
    _check_replaceable(out)
    ds = load_dataset(data, image_size=SIZE)
    if ds.train.labels is None or not ds.classes:
        raise UsageError(
            f"data {data!r} has no class labels: a classifier needs one sub-folder per class"
        )
    if ds.train_b is not None:
        raise UsageError(f"data {data!r} has two domains: train a classifier on one of them")
    channels = ds.spec.channels
    torch.manual_seed(seed)
    net = LeNet(channels, len(ds.classes))
    start, cpu_start = time.perf_counter(), time.process_time()
    with one_thread():
        _fit(net, to_float(ds.train.images), ds.train.labels, seed, log)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    meta = {
        "data": ds.name,
        "sources": list(DEFAULT_SOURCES) if ds.name == "mnist-5k" else [ds.name],
        "classes": ds.classes,
        "channels": channels,
        "size": SIZE,
        "seed": seed,
        "recipe": RECIPE,
        "train_images": len(ds.train),
        "held_out_images": len(ds.test),
        "held_out_accuracy": round(_accuracy(net, ds.test, channels), 6),
        "train_seconds": round(seconds, 1),
        # on one thread, CPU time is what training takes on an idle machine
        "train_cpu_seconds": round(cpu_seconds, 1),
    }
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    write_safetensors(out, state, {"zoo.kind": KIND, META_KEY: json.dumps(meta)})
    sidecar = {
        k: meta[k]
        for k in ("data", "seed", "held_out_accuracy", "train_seconds", "train_cpu_seconds")
    }
    write_text(sidecar_path(out), json.dumps({"sha256": sha256(out), **sidecar}, indent=2) + "\n")
    return Classifier(net.eval(), meta, out)


def _check_replaceable(out: Path) -> None:
    """Refuse to overwrite ``out`` or its sidecar unless they are a classifier and its
    record: ``--out run/config.safetensors`` must not replace the run's config.json."""
    side = sidecar_path(out)
    if out.exists():
        try:
            with safe_open(str(out), framework="pt") as f:
                ours = (f.metadata() or {}).get("zoo.kind") == KIND
        except (SafetensorError, OSError):
            ours = False
        if not ours:
            raise UsageError(
                f"{out} exists and is not an evaluation classifier; choose another --out"
            )
    if side.exists():
        try:
            ours = {"sha256", "held_out_accuracy"} <= set(json.loads(side.read_text()))
        except (ValueError, TypeError, OSError):
            ours = False
        if not ours:
            raise UsageError(
                f"{side} exists and is not a classifier record (it would be replaced by "
                f"{out.name}'s); choose another --out"
            )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def load_classifier(path: str | Path | None = None) -> Classifier:
    """Load a classifier file, refusing one whose sha256 differs from its sidecar's."""
    path = Path(path) if path else DEFAULT_PATH
    if not path.is_file():
        raise UsageError(f"classifier {path} does not exist")
    side = sidecar_path(path)
    if not side.is_file():
        raise ZooError(f"{path} has no {side.name} beside it to verify its sha256; retrain it")
    try:
        expected = json.loads(side.read_text())["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"{side} is not a valid classifier record ({exc})") from None
    if sha256(path) != expected:
        raise ZooError(f"{path} does not match the sha256 in {side.name}: the file is corrupt")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        meta = json.loads(metadata[META_KEY])
        _check_meta(meta)
        net = LeNet(int(meta["channels"]), len(meta["classes"]))
        net.load_state_dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ZooError(f"{path} is not a zoo evaluation classifier ({exc})") from None
    return Classifier(net.eval(), meta, path)


def _check_meta(meta: Any) -> None:
    """A classifier file's record, from anywhere: the kinds and ranges zoo writes."""
    if not isinstance(meta, dict):
        raise ValueError("its metadata is not a JSON object")
    accuracy, classes = meta.get("held_out_accuracy"), meta.get("classes")
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
        raise ValueError(f"held_out_accuracy {str(accuracy)[:20]!r} is not a number")
    if not 0 <= accuracy <= 1:
        raise ValueError(f"held_out_accuracy {accuracy} is not in [0, 1]")
    if meta.get("channels") not in (1, 3):
        raise ValueError(f"channels {str(meta.get('channels'))[:20]!r} is not 1 or 3")
    if not (isinstance(classes, list) and 2 <= len(classes) <= 1000):
        raise ValueError("classes must list 2 to 1,000 class names")
    if not isinstance(meta.get("data"), str):
        raise ValueError("data must name the data set it was trained on")
