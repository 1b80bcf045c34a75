"""Behavioural tests for zoo.judge.metrics against closed forms, reference formulas and
known regimes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from zoo.errors import UsageError
from zoo.judge import metrics
from zoo.judge.metrics import (
    density_coverage,
    frechet_distance,
    gaussian_frechet,
    gaussian_stats,
    inception_score,
    kid,
    precision_recall,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _mixture(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    """``n`` samples of unit-variance Gaussians around randomly chosen ``centers``."""
    idx = rng.integers(0, len(centers), n)
    return centers[idx] + rng.normal(size=(n, centers.shape[1]))


@pytest.fixture(scope="module")
def clusters() -> np.ndarray:
    """Five well-separated cluster centres in 8-d."""
    return _rng(1).normal(size=(5, 8)) * 10.0


# --- Frechet distance -----------------------------------------------------------------------


def test_fd_identical_sets_is_zero():
    x = _rng().normal(size=(500, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_isotropic_gaussians_match_closed_form():
    # N(mu1, s1^2 I) vs N(mu2, s2^2 I): FD = ||mu1 - mu2||^2 + d (s1 - s2)^2 = 5 + 4 = 9.
    rng, d, n = _rng(), 4, 50_000
    mu2 = np.array([1.0, 2.0, 0.0, 0.0])
    a = rng.normal(size=(n, d))
    b = mu2 + 2.0 * rng.normal(size=(n, d))
    assert frechet_distance(a, b) == pytest.approx(9.0, abs=0.15)


def test_gaussian_frechet_diagonal_closed_form():
    # Commuting covariances: trace term is sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([3.0, 0.0, 4.0])
    expected = 25.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert gaussian_frechet(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_fd_matches_scipy_sqrtm_formula():
    rng = _rng(2)
    a = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 10))
    b = rng.normal(size=(400, 10)) @ rng.normal(size=(10, 10)) + 0.5
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    np.testing.assert_allclose(s1, np.cov(a, rowvar=False))
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * covmean)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_fd_handles_rank_deficient_covariance():
    # Fewer samples than dimensions: singular covariances must not produce NaN.
    rng = _rng(3)
    fd = frechet_distance(rng.normal(size=(20, 84)), rng.normal(size=(20, 84)))
    assert np.isfinite(fd) and fd > 0


# --- KID --------------------------------------------------------------------------------------


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = _rng(4)
    a, b = rng.normal(size=(500, 16)), rng.normal(size=(500, 16))
    same_mean, same_std = kid(a, b, subsets=20, subset_size=200)
    shift_mean, _ = kid(a, b + 0.5, subsets=20, subset_size=200)
    assert abs(same_mean) < 0.01 and same_std >= 0
    assert shift_mean > 0.5
    assert shift_mean > 20 * abs(same_mean)


def test_kid_full_subset_equals_direct_unbiased_mmd():
    rng = _rng(5)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 3)) + 0.3

    def k(u, v):
        return (u @ v / 3 + 1.0) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    # subset_size is capped at n, and MMD is invariant to the order the rows are drawn in.
    mean, std = kid(x, y, subsets=3, subset_size=1000)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_deterministic_for_seed():
    rng = _rng(6)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    kwargs = dict(subsets=5, subset_size=50)
    assert kid(a, b, seed=1, **kwargs) == kid(a, b, seed=1, **kwargs)
    assert kid(a, b, seed=1, **kwargs) != kid(a, b, seed=2, **kwargs)


# --- Inception Score --------------------------------------------------------------------------


def test_is_uniform_one_hot_equals_number_of_classes():
    probs = np.eye(10)[np.arange(1000) % 10]
    mean, std = inception_score(probs, splits=1)
    assert mean == pytest.approx(10.0)
    assert std == pytest.approx(0.0, abs=1e-12)
    assert 9.3 < inception_score(probs, splits=10)[0] <= 10.0  # chunks of 100 are not balanced


def test_is_does_not_depend_on_sample_order():
    by_class = np.eye(10)[np.repeat(np.arange(10), 100)]  # how a conditional model samples
    shuffled = by_class[np.random.default_rng(1).permutation(1000)]
    assert inception_score(by_class)[0] == pytest.approx(inception_score(shuffled)[0], abs=0.3)
    assert inception_score(by_class)[0] > 9.3


@pytest.mark.parametrize(
    "probs",
    [np.eye(10)[np.zeros(200, dtype=int)], np.full((200, 10), 0.1)],
    ids=["single-class", "uniform-softmax"],
)
def test_is_collapsed_or_ambiguous_is_one(probs):
    mean, _ = inception_score(probs, splits=5)
    assert mean == pytest.approx(1.0)


def test_is_between_bounds_for_soft_predictions():
    logits = _rng(7).normal(size=(500, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean, std = inception_score(probs)
    assert 1.0 < mean < 10.0 and std > 0


# --- Precision / recall, density / coverage ---------------------------------------------------


def test_knn_metrics_hand_computed_1d():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1 radii: all 1
    fake = np.array([[0.5], [10.0]])  # k=1 radii: both 9.5
    # 0.5 lies in the balls of reals 0 and 1; 10 in none. The ball at 0.5 holds every real.
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    # density = 2 hits / (k * 2 fakes); only reals 0 and 1 have a fake within radius.
    assert density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_knn_metrics_same_distribution_high(clusters):
    rng = _rng(8)
    real, fake = _mixture(rng, clusters, 1000), _mixture(rng, clusters, 1000)
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert precision > 0.8 and recall > 0.8
    assert density == pytest.approx(1.0, abs=0.15) and coverage > 0.8


def test_knn_metrics_mode_collapse_keeps_precision_loses_recall(clusters):
    rng = _rng(9)
    real = _mixture(rng, clusters, 1000)
    collapsed = _mixture(rng, clusters[:1], 1000)  # every fake from one of five modes
    precision, recall = precision_recall(real, collapsed)
    _, coverage = density_coverage(real, collapsed)
    assert precision > 0.8
    assert recall < 0.3 and coverage < 0.3


def test_knn_metrics_disjoint_sets_score_zero(clusters):
    rng = _rng(10)
    real = _mixture(rng, clusters, 300)
    fake = _mixture(rng, clusters, 300) + 1000.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_knn_metrics_independent_of_chunk_size(clusters, monkeypatch):
    rng = _rng(11)
    real, fake = _mixture(rng, clusters, 300), _mixture(rng, clusters[:2], 250)
    expected = precision_recall(real, fake), density_coverage(real, fake)
    monkeypatch.setattr(metrics, "_CHUNK", 7)
    assert (precision_recall(real, fake), density_coverage(real, fake)) == expected


# --- Validation -------------------------------------------------------------------------------


def _good(n: int = 10, d: int = 4) -> np.ndarray:
    return _rng(12).normal(size=(n, d))


@pytest.mark.parametrize("fn", [frechet_distance, kid, precision_recall, density_coverage])
@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (_good(d=4), _good(d=5), "dimensions differ"),
        (_good(n=1), _good(), "at least"),
        (_good()[0], _good(), "2-D"),
        (np.where(np.eye(10, 4) > 0, np.nan, 0.0), _good(), "NaN or infinite"),
        (_good(), np.full((10, 4), np.inf), "NaN or infinite"),
    ],
    ids=["dim-mismatch", "one-sample", "1-d", "nan", "inf"],
)
def test_feature_validation(fn, a, b, match):
    with pytest.raises(UsageError, match=match):
        fn(a, b)


@pytest.mark.parametrize("fn", [precision_recall, density_coverage])
def test_knn_needs_k_plus_one_samples(fn):
    with pytest.raises(UsageError, match="at least 4"):
        fn(_good(n=3), _good(), k=3)
    with pytest.raises(UsageError, match="k must be"):
        fn(_good(), _good(), k=0)


def test_kid_rejects_bad_subset_arguments():
    with pytest.raises(UsageError, match="subsets"):
        kid(_good(), _good(), subsets=0)
    with pytest.raises(UsageError, match="subset_size"):
        kid(_good(), _good(), subset_size=1)


@pytest.mark.parametrize(
    ("probs", "splits", "match"),
    [
        (np.full((10, 4), 0.5), 2, "sum to 1"),
        (np.tile([1.5, -0.5], (10, 1)), 2, "non-negative"),
        (np.full((5, 4), 0.25), 10, "at least 10"),
        (np.full((5, 4), 0.25), 0, "splits must be"),
    ],
)
def test_is_validation(probs, splits, match):
    with pytest.raises(UsageError, match=match):
        inception_score(probs, splits=splits)


def test_gaussian_frechet_rejects_shape_mismatch():
    with pytest.raises(UsageError, match="shapes do not match"):
        gaussian_frechet(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
