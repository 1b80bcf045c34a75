"""Sample-quality metrics on feature arrays (FD, KID, IS, precision/recall, density/coverage).

All functions take plain arrays (anything ``np.asarray`` accepts, e.g. CPU tensors) of shape
``(n, d)`` -- classifier features, or softmax probabilities for the Inception Score -- and compute
in float64. Bad input raises ``UsageError`` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

from zoo.errors import UsageError

# Rows of queries per block of pairwise distances: bounds memory at _CHUNK * n_refs floats.
_CHUNK = 1024


def _features(x: ArrayLike, name: str, min_n: int = 2) -> np.ndarray:
    """Return ``x`` as a finite float64 ``(n, d)`` array with ``n >= min_n``, else raise."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise UsageError(f"{name}: expected a 2-D (n, d) array, got shape {arr.shape}")
    if arr.shape[0] < min_n:
        raise UsageError(f"{name}: need at least {min_n} samples, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise UsageError(f"{name}: contains NaN or infinite values")
    return arr


def _feature_pair(
    a: ArrayLike, b: ArrayLike, min_n: int = 2, names: tuple[str, str] = ("feats_a", "feats_b")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two feature sets that must share a feature dimension."""
    fa, fb = _features(a, names[0], min_n), _features(b, names[1], min_n)
    if fa.shape[1] != fb.shape[1]:
        raise UsageError(
            f"feature dimensions differ: {names[0]} has {fa.shape[1]}, {names[1]} has {fb.shape[1]}"
        )
    return fa, fb


def gaussian_stats(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of ``feats``, for reuse across FD calls."""
    x = _features(feats, "feats")
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def gaussian_frechet(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``; the trace of the matrix square root is the
    sum of square roots of the eigenvalues of ``S1 S2`` (real parts, clipped at 0), which avoids
    ``sqrtm``'s instability on near-singular covariances.
    """
    m1, m2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = m1.shape[0] if m1.ndim == 1 else -1
    if d < 1 or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise UsageError(
            f"Gaussian shapes do not match: mu {m1.shape}, {m2.shape}; sigma {s1.shape}, {s2.shape}"
        )
    if not all(np.isfinite(v).all() for v in (m1, m2, s1, s2)):
        raise UsageError("Gaussian statistics contain NaN or infinite values")
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    diff = m1 - m2
    fd = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt
    return max(float(fd), 0.0)  # rounding can push identical inputs a hair below zero


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID/FLD).

    Biased at small n: only compare values computed at the same sample sizes.
    """
    fa, fb = _feature_pair(feats_a, feats_b)
    return gaussian_frechet(*gaussian_stats(fa), *gaussian_stats(fb))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between ``x`` and ``y`` with the cubic kernel ``(x.y / d + 1)^3``."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = x.shape[0], y.shape[0]
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def kid(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of unbiased cubic-kernel MMD^2 over random subsets.

    Each subset draws ``min(subset_size, len(a), len(b))`` rows without replacement from each set,
    using a generator seeded with ``seed`` (deterministic). Unbiased, so it can dip below zero when
    both sets come from the same distribution; unlike FD it is usable at small n.
    """
    if subsets < 1:
        raise UsageError(f"kid: subsets must be >= 1, got {subsets}")
    if subset_size < 2:
        raise UsageError(f"kid: subset_size must be >= 2, got {subset_size}")
    fa, fb = _feature_pair(feats_a, feats_b)
    m = min(subset_size, fa.shape[0], fb.shape[0])
    rng = np.random.default_rng(seed)
    scores = np.array(
        [
            _mmd2_unbiased(
                fa[rng.choice(fa.shape[0], m, replace=False)],
                fb[rng.choice(fb.shape[0], m, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    return float(scores.mean()), float(scores.std())


def _safe_log(p: np.ndarray) -> np.ndarray:
    """Elementwise log with log(0) := 0, so that ``0 * log 0`` terms vanish."""
    return np.log(np.where(p > 0, p, 1.0))


def inception_score(probs: ArrayLike, *, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))``: (mean, std) over ``splits`` equal chunks.

    ``probs`` is ``(n, classes)`` softmax output. Ranges from 1 (every sample looks alike or
    ambiguous) to ``classes`` (confident predictions spread evenly over all classes). The
    chunks are drawn from a seeded permutation: samples ordered by class (as a conditional
    model's are) would otherwise put one class in each chunk and score 1.
    """
    if splits < 1:
        raise UsageError(f"inception_score: splits must be >= 1, got {splits}")
    p = _features(probs, "probs", min_n=splits)
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise UsageError("probs: rows must be non-negative and sum to 1 (softmax output)")
    p = p[np.random.default_rng(seed).permutation(len(p))]
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (_safe_log(part) - _safe_log(marginal))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _distance_blocks(queries: np.ndarray, refs: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, D)`` with exact Euclidean distances ``D = |queries[rows] - refs|``."""
    ref_sq = (refs**2).sum(axis=1)
    for start in range(0, queries.shape[0], _CHUNK):
        rows = slice(start, start + _CHUNK)
        q = queries[rows]
        d2 = (q**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * (q @ refs.T)
        yield rows, np.sqrt(np.clip(d2, 0.0, None))


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its k-th nearest other row (the k-NN ball radius)."""
    radii = np.empty(x.shape[0])
    for rows, dist in _distance_blocks(x, x):
        # Each row's distance to itself is 0, so index k of the sorted row is the k-th neighbour.
        radii[rows] = np.partition(dist, k, axis=1)[:, k]
    return radii


def _ball_hits(
    queries: np.ndarray, centers: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Count, per query, the center balls containing it; flag, per center, whether any query is in.

    Ball ``i`` is the closed ball of radius ``radii[i]`` around ``centers[i]``.
    """
    counts = np.zeros(queries.shape[0], dtype=np.int64)
    covered = np.zeros(centers.shape[0], dtype=bool)
    for rows, dist in _distance_blocks(queries, centers):
        inside = dist <= radii[None, :]
        counts[rows] = inside.sum(axis=1)
        covered |= inside.any(axis=0)
    return counts, covered


def _knn_pair(real: ArrayLike, fake: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``k`` and a real/fake feature pair that each need at least ``k + 1`` samples."""
    if k < 1:
        raise UsageError(f"k must be >= 1, got {k}")
    return _feature_pair(real, fake, min_n=k + 1, names=("real", "fake"))


def precision_recall(real: ArrayLike, fake: ArrayLike, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) from k-NN manifolds.

    Precision (fidelity): fraction of fake samples inside some real sample's k-NN ball.
    Recall (diversity): fraction of real samples inside some fake sample's k-NN ball.
    """
    r, f = _knn_pair(real, fake, k)
    in_real, _ = _ball_hits(f, r, _knn_radii(r, k))
    in_fake, _ = _ball_hits(r, f, _knn_radii(f, k))
    return float((in_real > 0).mean()), float((in_fake > 0).mean())


def density_coverage(real: ArrayLike, fake: ArrayLike, *, k: int = 3) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), built on real k-NN balls only.

    Density: mean number of real balls containing each fake sample, divided by ``k`` (about 1 for
    matching distributions, can exceed 1). Coverage: fraction of real balls containing at least one
    fake sample; robust to real outliers and drops under mode collapse.
    """
    r, f = _knn_pair(real, fake, k)
    counts, covered = _ball_hits(f, r, _knn_radii(r, k))
    return float(counts.sum() / (k * f.shape[0])), float(covered.mean())
