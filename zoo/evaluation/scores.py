"""The evaluation protocol: one recipe of metrics for every model, plus sanity anchors.

N generated images (default 1,000) are scored against the classifier's reference set (its
data's held-out split) in the features of zoo.judge.classifier's classifier: FLD, KID,
classifier IS, precision/recall and density/coverage (k = 3). What else is measured follows the
model's capabilities, never its family: per-class accuracy for conditional models, held-out metrics
for models with `validate`, label preservation and cycle error for two-domain models. The anchors
(train images, blurred, noise, one class) run through the same protocol at the same N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo import api
from zoo.contract.imagesets import to_float
from zoo.contract.model import GenerativeModel, ModelInfo
from zoo.data.sources import load_dataset
from zoo.errors import UsageError
from zoo.judge import metrics
from zoo.judge.classifier import Classifier, load_classifier

DEFAULT_N = 1000
MIN_N = 10  # the Inception Score averages over 10 splits
K = 3  # nearest neighbours for precision/recall and density/coverage
KID_SUBSETS, KID_SUBSET_SIZE = 50, 500  # subsets smaller than N, so that the std means something


@dataclass
class Report:
    """What `zoo eval` prints: headline metrics, capability-specific ones, and the anchors."""

    model: str
    n: int
    seed: int
    runtime: str
    reference: str
    classifier: str
    metrics: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    anchors: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


METRIC_HEADERS = ["FLD", "KID", "IS", "precision", "recall", "density", "coverage"]


def format_metrics(m: dict[str, float]) -> list[str]:
    """Table cells for METRIC_HEADERS; KID as mean ± std over subsets."""
    return [
        f"{m['fld']:.2f}",
        f"{m['kid']:.3g} ± {m['kid_std']:.2g}",
        f"{m['is']:.2f}",
        *(f"{m[k]:.3f}" for k in ("precision", "recall", "density", "coverage")),
    ]


def score(clf: Classifier, feats: np.ndarray, probs: np.ndarray, seed: int) -> dict[str, float]:
    """The headline metrics of one image set's features against the reference set."""
    ref, _ = clf.reference()
    kid_mean, kid_std = metrics.kid(
        ref, feats, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=seed
    )
    is_mean, is_std = metrics.inception_score(probs, seed=seed)
    precision, recall = metrics.precision_recall(ref, feats, k=K)
    density, coverage = metrics.density_coverage(ref, feats, k=K)
    return {
        "fld": metrics.frechet_distance(ref, feats),
        "kid": kid_mean,
        "kid_std": kid_std,
        "is": is_mean,
        "is_std": is_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }


def score_images(clf: Classifier, images: torch.Tensor, seed: int) -> dict[str, float]:
    return score(clf, *clf.features(images), seed)


def _blur(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur (5x5 kernel), channel by channel."""
    x = torch.arange(5, dtype=torch.float32) - 2
    k1 = torch.exp(-(x**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    c = images.shape[1]
    kernel = (k1[:, None] * k1[None, :]).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), kernel, groups=c)


def _draw(count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """n indices into ``count`` items: without replacement when there are enough."""
    if n <= count:
        return torch.randperm(count, generator=generator)[:n]
    return torch.randint(count, (n,), generator=generator)


def anchor_sets(clf: Classifier, n: int, seed: int) -> dict[str, torch.Tensor]:
    """Sanity anchors in [-1, 1]: train images (the floor), blurred, uniform noise, one class."""
    train = clf.dataset().train
    assert train.labels is not None  # a classifier's data is labelled
    g = torch.Generator().manual_seed(seed)
    real = to_float(train.images[_draw(len(train), n, g)])
    top = int(torch.bincount(train.labels).argmax())  # the most frequent class
    one = torch.nonzero(train.labels == top).flatten()
    return {
        "train": real,
        "blurred train": _blur(real),
        f"single class ({clf.classes[top]})": to_float(train.images[one[_draw(len(one), n, g)]]),
        "uniform noise": torch.rand(real.shape, generator=g) * 2 - 1,
    }


def anchors(clf: Classifier, n: int = DEFAULT_N, seed: int = 0) -> dict[str, dict[str, float]]:
    return {name: score_images(clf, x, seed) for name, x in anchor_sets(clf, n, seed).items()}


def _domains(data: str) -> list[str]:
    return [p.strip() for p in data.removeprefix("unpaired:").split(",")]


def pick_classifier(info: ModelInfo, path: str | Path | None) -> Classifier:
    """The given classifier, or the shipped one when the model's output data suits it."""
    if path:
        return load_classifier(path)
    clf = load_classifier()
    judged = _domains(info.data)[-1]  # a translation's outputs belong to the last domain
    if judged not in clf.meta["sources"]:
        raise UsageError(
            f"no suitable evaluator for data {judged!r}: the shipped classifier judges "
            f"{', '.join(clf.meta['sources'])}; train one with `zoo eval --train-classifier "
            f"--data {judged} --out clf.safetensors` and pass --classifier clf.safetensors"
        )
    return clf


def _has_validate(model: GenerativeModel) -> bool:
    return type(model).validate is not GenerativeModel.validate


def _class_accuracy(
    loaded: api.Loaded,
    clf: Classifier,
    n: int,
    seed: int,
    runtime: str,
    device: str,
    truncation: float | None,
    options: dict[str, Any],
) -> tuple[torch.Tensor, dict[str, Any], list[str]]:
    """Equal numbers of samples per class, and the classifier's accuracy on each class."""
    classes = loaded.info.classes
    per = n // len(classes)
    if per < 1:
        raise UsageError(f"-n {n} is below the number of classes ({len(classes)})")
    labels = torch.arange(len(classes)).repeat_interleave(per)
    out = api.sample(
        loaded.path, len(labels), seed=seed, labels=labels.tolist(), runtime=runtime,
        device=device, loaded=loaded, truncation=truncation, options=options,
    )  # fmt: skip
    if classes != clf.classes:
        return out.images, {}, ["class accuracy skipped: the classifier's classes differ"]
    hits = clf.predict(out.images) == labels.numpy()
    per_class = {c: float(hits[labels.numpy() == i].mean()) for i, c in enumerate(classes)}
    return out.images, {"class_accuracy": float(hits.mean()), "per_class": per_class}, []


def _translation(
    loaded: api.Loaded, clf: Classifier, n: int, seed: int, runtime: str, device: str
) -> tuple[torch.Tensor, dict[str, Any], list[str]]:
    """Held-out domain-A images translated to B: label preservation and cycle error; and
    domain-B images translated to A, where B has labels too. The classifier's accuracy on the
    real domain-A images is reported beside B->A, the ceiling that direction can reach."""
    spec = loaded.model.spec
    data = load_dataset(loaded.info.data, image_size=spec.size, channels=spec.channels)
    held_out = data.test
    inputs = to_float(held_out.images[:n])

    def run(images: torch.Tensor, direction: str) -> torch.Tensor:
        return api.sample(
            loaded.path, len(images), seed=seed, inputs=images, runtime=runtime,
            options={"direction": direction}, device=device, loaded=loaded,
        ).images.cpu()  # fmt: skip

    fake_b = run(inputs, "a2b")
    cycle = run(fake_b, "b2a")
    extra: dict[str, Any] = {"cycle_l1": float((cycle - inputs).abs().mean())}
    notes = [f"translations of the first {len(inputs)} held-out domain-A images"]
    if held_out.labels is not None and loaded.info.classes == clf.classes:
        kept = clf.predict(fake_b) == held_out.labels[:n].numpy()
        extra["label_preservation"] = float(kept.mean())
    held_b = data.test_b
    if held_b is not None and held_b.labels is not None and loaded.info.classes == clf.classes:
        fake_a = run(to_float(held_b.images[:n]), "b2a")
        kept = clf.predict(fake_a) == held_b.labels[:n].numpy()
        extra["label_preservation_b2a"] = float(kept.mean())
        if held_out.labels is not None:
            real_a = clf.predict(inputs) == held_out.labels[:n].numpy()
            extra["classifier_accuracy_a"] = float(real_a.mean())
    return fake_b, extra, notes


def evaluate(
    source: str | Path,
    n: int = DEFAULT_N,
    *,
    seed: int = 0,
    runtime: str = "auto",
    classifier: str | Path | None = None,
    with_anchors: bool = True,
    device: str = "cpu",
    truncation: float | None = None,
    options: dict[str, Any] | None = None,
) -> Report:
    """Score a model (run dir, weights file, ONNX file or catalogue name) by the protocol;
    ``truncation`` samples with the truncation trick (families with a prior graph),
    ``options`` with the family's sample options (a diffusion model's ``steps``)."""
    if n < MIN_N:
        raise UsageError(f"-n must be at least {MIN_N} (got {n})")
    loaded = api.load(source, "cpu")
    runtime = api.pick_runtime(runtime, loaded)
    model, info = loaded.model, loaded.info
    clf = pick_classifier(info, classifier)
    extra: dict[str, Any] = {}
    notes: list[str] = []
    if truncation is not None:
        api.prior(loaded)  # a family without a prior graph says so here
        notes.append(f"sampled with truncation {truncation:g}")
    options = dict(options or {})
    if options:
        notes.append("sampled with " + ", ".join(f"{k} {v}" for k, v in options.items()))
    if model.domains == 2:
        if options:
            raise UsageError("zoo eval translates both ways itself: drop the sample options")
        images, extra, notes = _translation(loaded, clf, n, seed, runtime, device)
    elif model.conditional:
        images, extra, more = _class_accuracy(
            loaded, clf, n, seed, runtime, device, truncation, options
        )
        notes += more
    else:
        images = api.sample(
            loaded.path, n, seed=seed, runtime=runtime, device=device, loaded=loaded,
            truncation=truncation, options=options,
        ).images  # fmt: skip
    if _has_validate(model):
        if loaded.path.suffix == ".onnx":
            notes.append("held-out validation needs the PyTorch weights, not an ONNX file")
        else:
            spec = model.spec
            held_out = load_dataset(info.data, image_size=spec.size, channels=spec.channels).test
            with torch.no_grad():
                extra |= {f"val_{k}": float(v) for k, v in model.validate(held_out).items()}
    ref_n = len(clf.reference()[0])
    return Report(
        model=info.name or info.family,
        n=len(images),
        seed=seed,
        runtime=runtime,
        reference=f"held-out split of {clf.meta['data']} ({ref_n} images)",
        classifier=clf.describe(),
        metrics=score_images(clf, images, seed),
        extra=extra,
        anchors=anchors(clf, len(images), seed) if with_anchors else {},
        notes=notes,
    )
