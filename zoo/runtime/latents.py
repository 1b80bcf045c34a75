"""Latent tools for every family with a Gaussian prior: draws (truncated or not), spherical
interpolation, closed walks, and files of latents. NumPy only, so the torch-free path uses it
as it is; the torch path hands in torch's own generator, so both runtimes draw the same
numbers for the same seed.

A family gets these for free by declaring its ``prior`` graph (`zoo.contract.specs.FamilySpec`):
a graph that takes ``z``, standard normal of a fixed width, and, where conditional,
``labels``, and returns ``image``. Every feed here is what that graph takes; the order of the
draws is the families' own (`zoo.contract.latent.LatentModel.sample`: ``z``, then the labels),
so ``zoo sample NAME -n 1 --seed A`` and the first end of ``--interpolate K --seed A,B`` are
the same image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.base.files import atomic_path
from zoo.base.torch_random import MIN_NORMALS, Draws, TorchGenerator
from zoo.contract.diffusion import Diffusion, Network, denoise, deterministic
from zoo.errors import UsageError

MIN_TRUNCATION = 0.05  # below this the redraws run long and the samples are one image
MAX_REDRAWS = 10_000  # full redraws a truncated draw may take: at psi 0.05, about 400 suffice
MAX_FRAMES = 1024  # images one interpolation or walk makes
MAX_LATENTS = 100_000  # rows a latents file may hold
MAX_LATENT = 1 << 16  # values per latent vector: far above any zoo model, far below a bomb
Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class Prior:
    """What the core needs to know of a family's prior graph."""

    graph: str
    latent: int  # the width of z
    num_classes: int = 0  # 0: the graph takes no labels
    # a multi-step family's (`sampler_prior`): z is the start x_T, of this shape (C, H, W),
    # of this deterministic sampler
    image: tuple[int, int, int] | None = None
    sampler: Diffusion | None = None

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


def sampler_prior(graph: str, description: Diffusion, shape: tuple[int, int, int]) -> Prior | None:
    """A multi-step family's latent: the start x_T of its sampler, flattened, where the
    default sampler is deterministic, so that x_T alone fixes the image; None where it adds
    noise at every step."""
    if not deterministic(description):
        return None
    return Prior(graph, math.prod(shape), description.num_classes, shape, description)


def from_start(prior: Prior, network: Network, feed: Feed, **options: Any) -> np.ndarray:
    """The images a `sampler_prior`'s sampler draws from a feed's x_T (``z``) and labels;
    ``options``: the sampler's steps, eta, guidance."""
    assert prior.image is not None and prior.sampler is not None, "not a sampler's prior"
    x = feed["z"].reshape(-1, *prior.image)
    return denoise(prior.sampler, network, x, labels=feed.get("labels"), **options)


def mirrored(prior: Prior, rows: int) -> bool:
    """Whether NumPy reproduces torch's draw of ``rows`` latents (torch takes another path
    for fewer than 16 values)."""
    return rows * prior.latent >= MIN_NORMALS


def check_truncation(psi: float | None) -> None:
    if psi is not None and not (math.isfinite(psi) and psi >= MIN_TRUNCATION):
        raise UsageError(
            f"--truncation {psi} is out of range: use a value of at least {MIN_TRUNCATION} "
            "(1.0 keeps about two thirds of each coordinate's draws, 2.0 nearly all)"
        )


def normal(draws: Draws, rows: int, width: int, psi: float | None = None) -> np.ndarray:
    """``rows`` standard normal vectors; with ``psi``, each coordinate drawn from the normal
    truncated to [-psi, psi] by drawing it again until it lies inside (the truncation trick of
    Brock et al. 2019, done as truncation rather than scaling). Each redraw is a whole
    ``rows x width`` draw whose values replace only the coordinates still outside, so that
    every call is one torch can make and NumPy can mirror."""
    z = draws.randn(rows, width)
    if psi is None:
        return z
    check_truncation(psi)
    for _ in range(MAX_REDRAWS):
        outside = np.abs(z) > psi
        if not outside.any():
            return z
        z = np.where(outside, draws.randn(rows, width), z)
    raise UsageError(f"--truncation {psi}: the draw did not settle; use a larger value")


def draw(
    prior: Prior,
    draws: Draws,
    n: int,
    labels: list[int] | None = None,
    truncation: float | None = None,
) -> Feed:
    """The prior graph's inputs for ``n`` images: ``z``, then (conditional, no labels given)
    labels drawn after it, as the families draw them."""
    if labels and not prior.conditional:
        raise UsageError("this model is not conditional: drop --label")
    if labels is not None and len(labels) != n:
        raise UsageError(f"got {len(labels)} labels for {n} images")
    feed = {"z": normal(draws, n, prior.latent, truncation)}
    if prior.conditional:
        given = np.asarray(labels, np.int64) if labels else None
        feed["labels"] = given if given is not None else draws.randint(prior.num_classes, n)
    return feed


def calls(feed: Feed, one_by_one: bool) -> Iterator[Feed]:
    """The feed whole, or (``one_by_one``) a row at a time, as ``-n 1`` runs an image: the
    images of a path then equal the seeds' own to the bit, whatever the runtime's kernels
    do with larger batches."""
    if not one_by_one:
        yield feed
        return
    for row in range(len(feed["z"])):
        yield {k: v[row : row + 1] for k, v in feed.items()}


def seeded(
    prior: Prior,
    seed: int,
    n: int,
    labels: list[int] | None = None,
    truncation: float | None = None,
) -> Feed | None:
    """`draw` from ``seed`` with torch's numbers in NumPy; None where torch would draw ``z``
    by another method (fewer than 16 values) and only torch can sample."""
    return draw(prior, TorchGenerator(seed), n, labels, truncation) if mirrored(prior, n) else None


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points from ``a`` to ``b`` (one latent row each) along the great circle
    between them, scaled from one's norm to the other's: the path Gaussian latents keep their
    typical norm on (a straight line dips towards the origin, where samples are atypical)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    cos = float(np.clip(a64 @ b64 / max(na * nb, 1e-12), -1.0, 1.0))
    angle = np.arccos(cos)
    if angle < 1e-6:
        mixed = (1 - t) * a64 + t * b64
    else:
        ua, ub = a64 / max(na, 1e-12), b64 / max(nb, 1e-12)
        direction = (np.sin((1 - t) * angle) * ua + np.sin(t * angle) * ub) / np.sin(angle)
        mixed = direction * ((1 - t) * na + t * nb)
    mixed[0], mixed[-1] = a64, b64  # the ends exactly
    return mixed.astype(a.dtype).reshape(steps, *a.shape[1:])


def check_frames(steps: int, what: str) -> None:
    if not 2 <= steps <= MAX_FRAMES:
        raise UsageError(f"--{what} {steps}: give between 2 and {MAX_FRAMES} images")


def interpolation(ends: list[Feed], steps: int) -> Feed:
    """``steps`` images from each pair of one-row feeds (ends 0 and 1, 2 and 3, ...): a row
    per pair. A class cannot be blended through integer labels, so a conditional path keeps
    the first end's class for its first half and the second end's for the rest (one class
    throughout when both ends share it)."""
    check_frames(steps, "interpolate")
    if len(ends) < 2 or len(ends) % 2:
        raise UsageError(
            f"interpolation joins pairs of ends, and {len(ends)} make no whole number of pairs"
        )
    rows: list[Feed] = []
    for a, b in zip(ends[0::2], ends[1::2]):
        row = {"z": slerp(a["z"][:1], b["z"][:1], steps)}
        if "labels" in a:
            half = np.arange(steps) >= steps / 2
            row["labels"] = np.where(half, b["labels"][0], a["labels"][0]).astype(np.int64)
        rows.append(row)
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def walk(prior: Prior, draws: Draws, steps: int, label: int | None = None,
         truncation: float | None = None) -> Feed:  # fmt: skip
    """A smooth closed path of ``steps`` images: z(t) = cos(t) a + sin(t) b for t around the
    circle, with a and b drawn independently from the prior, so every point is itself a
    standard normal draw (with ``truncation``, a and b are truncated; the path between them
    is not). The first image is ``zoo sample -n 1`` of the same seed: a is drawn first, then
    the class, then b."""
    check_frames(steps, "walk")
    start = draw(prior, draws, 1, [label] if label is not None else None, truncation)
    other = normal(draws, 1, prior.latent, truncation)
    t = np.linspace(0.0, 2 * math.pi, steps, endpoint=False)[:, None]
    z = np.cos(t) * start["z"].astype(np.float64) + np.sin(t) * other.astype(np.float64)
    z[0] = start["z"][0]  # exactly the first end
    feed = {"z": z.astype(np.float32)}
    if "labels" in start:
        feed["labels"] = np.repeat(start["labels"], steps)
    return feed


def read_latents(path: Path, prior: Prior) -> Feed:
    """A latents file (`zoo invert --out`, or written by hand): an .npz with ``z`` (rows of
    the prior's width, finite) and, for conditional models, ``labels``. Checked before use:
    it may come from anywhere."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if "z" not in names:
                raise UsageError(f"--latents {path}: no 'z' array (written by zoo invert?)")
            z = _bounded(npz, "z", path)
            labels = _bounded(npz, "labels", path) if "labels" in names else None
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"--latents {path} is not a readable .npz file ({exc})") from None
    if z.ndim != 2 or z.shape[1] != prior.latent or not 1 <= len(z) <= MAX_LATENTS:
        raise UsageError(
            f"--latents {path}: z is {z.shape}, but this model takes rows of {prior.latent} "
            f"values (1 to {MAX_LATENTS:,} rows)"
        )
    if not np.issubdtype(z.dtype, np.floating) or not np.isfinite(z).all():
        raise UsageError(f"--latents {path}: z must hold finite floating-point values")
    feed = {"z": z.astype(np.float32)}
    if prior.conditional:
        if labels is None:
            raise UsageError(f"--latents {path}: this model is conditional and needs 'labels'")
        if labels.shape != (len(z),) or not np.issubdtype(labels.dtype, np.integer):
            raise UsageError(f"--latents {path}: 'labels' must be {len(z)} integers")
        if labels.min() < 0 or labels.max() >= prior.num_classes:
            raise UsageError(f"--latents {path}: labels must be classes 0..{prior.num_classes - 1}")
        feed["labels"] = labels.astype(np.int64)
    return feed


def write_latents(path: Path, z: np.ndarray, labels: np.ndarray | None = None,
                  **extra: np.ndarray) -> None:  # fmt: skip
    """A latents file `read_latents` takes (and ``zoo sample --latents`` renders)."""
    arrays: dict[str, Any] = {"z": z.astype(np.float32), **extra}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _bounded(npz: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    """An array of the file, refused before it is read when its header claims too much."""
    fmt = np.lib.format
    assert npz.zip is not None  # open while the file is
    with npz.zip.open(f"{name}.npy") as member:
        version = fmt.read_magic(member)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(member)
    if math.prod(shape) > MAX_LATENTS * MAX_LATENT or dtype.hasobject:
        raise UsageError(f"--latents {path}: {name!r} is {shape} of {dtype}, more than zoo reads")
    return np.asarray(npz[name])


@dataclass(frozen=True)
class LatentQuery:
    """What `zoo sample` asks of a prior: ``n`` images from one seed (with ``labels``, one
    per image), a path of ``interpolate`` images between two seeds' draws or between pairs of
    rows of a ``latents`` file, a closed ``walk``, or a file's rows as they are. Labels for a
    path are one (both ends) or two (one per end); ``truncation`` applies to every draw."""

    n: int = 64
    seeds: tuple[int, ...] = (0,)
    labels: list[int] | None = None
    truncation: float | None = None
    interpolate: int = 0
    walk: int = 0
    latents: Path | None = None
    rows: Feed | None = None  # latents in memory (an inversion's), used as a file's rows

    @property
    def given(self) -> bool:
        return self.latents is not None or self.rows is not None

    def check(self) -> None:
        """Refuse combinations that mean nothing, before anything is loaded."""
        check_truncation(self.truncation)
        if self.interpolate and self.walk:
            raise UsageError("--interpolate and --walk are two kinds of path: give one")
        if len(self.seeds) == 2 and not (self.interpolate and not self.given):
            raise UsageError("--seed A,B names the ends of --interpolate K; otherwise one seed")
        if self.interpolate and not self.given and len(self.seeds) != 2:
            raise UsageError("--interpolate K joins two seeds' images: give --seed A,B")
        if len(self.seeds) not in (1, 2):
            raise UsageError("--seed takes one seed, or two (A,B) with --interpolate")
        if self.given and (self.walk or self.truncation is not None):
            raise UsageError("--latents gives the latents: drop --walk and --truncation")
        if self.given and self.labels:
            raise UsageError("latents carry their own labels: drop --label")
        if (
            (self.interpolate or self.walk)
            and self.labels
            and len(self.labels) > 1 + bool(self.interpolate)
        ):
            raise UsageError(
                "a path takes one --label (held throughout), or two with --interpolate (one "
                "per end)"
            )
        for steps, what in ((self.interpolate, "interpolate"), (self.walk, "walk")):
            if steps:
                check_frames(steps, what)

    @property
    def path(self) -> bool:
        return bool(self.interpolate or self.walk)


def feed_for(
    prior: Prior, query: LatentQuery, draws_for: Callable[[int], Draws]
) -> tuple[Feed, int]:
    """The prior graph's inputs for ``query`` and the images per row; ``draws_for(seed)``
    gives the draws of a seed (torch's generator, or NumPy's mirror of it, which raises
    ValueError where torch draws fewer than 16 values by another method)."""
    query.check()
    labels = query.labels
    if query.given:
        if query.rows is not None:
            feed = query.rows
        else:
            assert query.latents is not None  # given
            feed = read_latents(query.latents, prior)
        if not query.interpolate:
            return feed, 0
        ends = [{k: v[i : i + 1] for k, v in feed.items()} for i in range(len(feed["z"]))]
        return interpolation(ends, query.interpolate), query.interpolate
    if query.walk:
        label = labels[0] if labels else None
        return walk(prior, draws_for(query.seeds[0]), query.walk, label, query.truncation), (
            query.walk
        )
    if query.interpolate:
        per_end = [labels[0], labels[-1]] if labels else [None, None]
        ends = [
            draw(prior, draws_for(seed), 1, None if label is None else [label], query.truncation)
            for seed, label in zip(query.seeds, per_end)
        ]
        return interpolation(ends, query.interpolate), query.interpolate
    return draw(prior, draws_for(query.seeds[0]), query.n, labels, query.truncation), 0
