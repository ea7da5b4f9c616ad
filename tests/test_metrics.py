"""zoo.metrics against closed forms and independent NumPy/SciPy computations."""

import math

import numpy as np
import pytest
import scipy.linalg

from zoo import metrics


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def test_frechet_distance_of_identical_gaussians_is_zero():
    cov = np.cov(np.random.default_rng(0).standard_normal((50, 6)), rowvar=False)
    assert metrics.frechet_distance(np.ones(6), cov, np.ones(6), cov) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_in_one_dimension_is_the_closed_form():
    # W2(N(m1, s1^2), N(m2, s2^2))^2 = (m1 - m2)^2 + (s1 - s2)^2.
    got = metrics.frechet_distance([1.0], [[4.0]], [-2.0], [[0.25]])
    assert got == pytest.approx(9.0 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_frechet_distance_of_commuting_covariances_is_the_closed_form():
    # Covariances with shared eigenvectors: Tr((S1 S2)^(1/2)) = sum sqrt(a_i b_i), so
    # FD = |m1 - m2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    d = 5
    rotation = _rotation(d, 1)
    a, b = np.array([0.5, 1.0, 2.0, 3.0, 9.0]), np.array([4.0, 1.0, 0.5, 0.1, 1.0])
    m1, m2 = np.arange(d, dtype=float), np.arange(d, dtype=float)[::-1]
    got = metrics.frechet_distance(m1, rotation @ np.diag(a) @ rotation.T, m2, rotation @ np.diag(b) @ rotation.T)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_general_covariances_matches_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
    m1, m2 = rng.standard_normal(8), rng.standard_normal(8)
    reference = np.sum((m1 - m2) ** 2) + np.trace(cov1 + cov2 - 2.0 * np.real(scipy.linalg.sqrtm(cov1 @ cov2)))
    assert metrics.frechet_distance(m1, cov1, m2, cov2) == pytest.approx(reference, rel=1e-8)


def test_frechet_distance_is_finite_for_singular_covariances():
    # Fewer samples than dimensions: rank-deficient covariances, as with small FID sets.
    rng = np.random.default_rng(3)
    value = metrics.frechet_distance_of_features(rng.standard_normal((5, 20)), rng.standard_normal((5, 20)) + 1.0)
    assert np.isfinite(value) and value > 0


def test_frechet_distance_of_features_estimates_the_closed_form():
    rng = np.random.default_rng(4)
    m1, m2 = np.zeros(3), np.array([1.0, 0.0, -1.0])
    a, b = np.array([1.0, 2.0, 0.5]), np.array([0.25, 2.0, 4.0])
    x = m1 + rng.standard_normal((200_000, 3)) * np.sqrt(a)
    y = m2 + rng.standard_normal((200_000, 3)) * np.sqrt(b)
    expected = 2.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance_of_features(x, y) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes do not match"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def _mmd2_loops(x, y):
    """The unbiased MMD^2 estimator written out term by term (Gretton et al. 2012, eq. 3)."""
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def test_mmd2_unbiased_matches_the_term_by_term_estimator():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((7, 4)), rng.standard_normal((9, 4)) + 0.5
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(_mmd2_loops(x, y), rel=1e-10)


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    same_mean, same_std = metrics.kernel_distance(x, y, subset_size=500, n_subsets=20)
    shifted_mean, _ = metrics.kernel_distance(x, y + 0.5, subset_size=500, n_subsets=20)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 20 * max(abs(same_mean), same_std)


def test_class_coverage_of_a_collapsed_generator():
    result = metrics.class_coverage(np.full(1000, 3), np.ones(10))
    assert result["classes_covered"] == 1
    assert result["kl"] == pytest.approx(math.log(10))
    assert result["histogram"][3] == 1.0 and result["min_fraction"] == 0.0


def test_class_coverage_of_a_balanced_generator_and_a_rare_class():
    balanced = metrics.class_coverage(np.repeat(np.arange(10), 100), np.ones(10))
    assert balanced["classes_covered"] == 10 and balanced["kl"] == pytest.approx(0.0, abs=1e-12)
    # Class 9 gets 0.5% of the samples: under 10% of its 10% share, so not covered.
    predicted = np.concatenate([np.repeat(np.arange(9), 221), np.full(5, 9)])
    rare = metrics.class_coverage(predicted, np.ones(10))
    assert rare["classes_covered"] == 9 and rare["counts"][9] == 5
    histogram = np.array(rare["histogram"])
    assert rare["kl"] == pytest.approx(np.sum(histogram * np.log(histogram / 0.1)))


def test_class_coverage_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        metrics.class_coverage(np.array([0, 3]), np.ones(3))


def test_cluster_accuracy_is_invariant_to_renaming_clusters():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    assert metrics.cluster_accuracy(labels, np.array([5, 5, 9, 9, 1, 1, 1])) == 1.0
    assert metrics.cluster_accuracy(labels, np.array([5, 5, 9, 9, 1, 1, 9])) == pytest.approx(6 / 7)


def test_clustering_scores_find_separated_blobs_and_not_noise():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(4), 50)
    centres = 10.0 * rng.standard_normal((4, 3))
    separated = metrics.clustering_scores(centres[labels] + rng.standard_normal((200, 3)), labels)
    assert separated["accuracy"] == 1.0 and separated["nmi"] == pytest.approx(1.0)
    noise = metrics.clustering_scores(rng.standard_normal((200, 3)), labels)
    assert noise["nmi"] < 0.2 and noise["accuracy"] < 0.5
