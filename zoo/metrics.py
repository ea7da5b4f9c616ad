"""The maths of sample-quality and representation metrics, in NumPy/SciPy.

Every function here takes plain arrays (features, labels, codes) and knows
nothing about models, so each can be tested against a closed form:

- `frechet_distance`: the Fréchet (2-Wasserstein) distance between two
  Gaussians, the quantity behind FID (Heusel et al. 2017).
- `kernel_distance`: the unbiased MMD^2 with the cubic polynomial kernel,
  averaged over subsets: KID (Bińkowski et al. 2018).
- `class_coverage`: the class histogram of generated samples, its KL to the
  data's class frequencies and the number of classes covered.
- `clustering_scores`: k-means on codes, NMI and best-matching accuracy.
"""

import numpy as np

# A class counts as covered when it receives at least this fraction of its
# share under the data's class frequencies (1% of samples for 10 balanced
# classes): a few misclassified blobs must not make a collapsed mode look alive.
COVERAGE_FRACTION_OF_SHARE = 0.1


def _as_2d(name, x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dims); got shape {x.shape}.")
    return x


def gaussian_statistics(features):
    """Mean and (unbiased) covariance of features (n, d), in float64."""
    features = _as_2d("features", features)
    if len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance; got {len(features)}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix):
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean1, cov1, mean2, cov2):
    """Fréchet distance between N(mean1, cov1) and N(mean2, cov2):

        |mean1 - mean2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)).

    The trace of (cov1 cov2)^(1/2) is computed as the sum of square roots of
    the eigenvalues of the symmetric PSD matrix cov1^(1/2) cov2 cov1^(1/2)
    (which has the same spectrum), so there is no complex round-off as with
    `scipy.linalg.sqrtm` on a near-singular product.
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != (mean1.size, mean1.size):
        raise ValueError(
            f"frechet_distance: shapes do not match: means {mean1.shape} and {mean2.shape}, "
            f"covariances {cov1.shape} and {cov2.shape}."
        )
    root1 = _psd_sqrt(cov1)
    cross = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    trace_sqrt = np.sqrt(np.clip(cross, 0.0, None)).sum()
    diff = mean1 - mean2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt, 0.0))


def frechet_distance_of_features(features1, features2):
    """Fréchet distance between Gaussians fitted to two feature sets (n, d): FID's formula."""
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    """Unbiased MMD^2 between samples x (m, d) and y (n, d) with k(a, b) = (a.b / d + 1)^3."""
    x, y = _as_2d("x", x), _as_2d("y", y)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"mmd2_unbiased needs at least 2 samples on each side; got {m} and {n}.")
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def kernel_distance(features1, features2, subset_size=1000, n_subsets=100, seed=0):
    """KID: the unbiased MMD^2 (cubic polynomial kernel) averaged over random subsets.

    Returns (mean, std) over `n_subsets` draws of `subset_size` vectors
    (without replacement) from each side; the subset size shrinks to the
    smaller set when needed. Unlike FID, its estimator is unbiased, so it is
    comparable across sample sizes and can be slightly negative when the two
    sets come from the same distribution.
    """
    features1, features2 = _as_2d("features1", features1), _as_2d("features2", features2)
    size = min(subset_size, len(features1), len(features2))
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            features1[rng.choice(len(features1), size, replace=False)],
            features2[rng.choice(len(features2), size, replace=False)],
        )
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def class_coverage(predicted, reference_frequencies):
    """Mode coverage of generated samples under a classifier (the mode-collapse check).

    Args:
        predicted: int array (n,). The classifier's label for each generated sample.
        reference_frequencies: array (n_classes,). The data's class frequencies
            (normalised here).

    Returns a dict: `histogram` (fraction of samples per class), `counts`,
    `kl` (KL(histogram || data frequencies), nats; 0 for a perfect match,
    log(n_classes) for a generator stuck on one of n balanced classes),
    `classes_covered` (classes with at least `COVERAGE_FRACTION_OF_SHARE` of
    their data share), `min_fraction` and `max_fraction`.
    """
    reference = np.asarray(reference_frequencies, np.float64)
    if reference.ndim != 1 or np.any(reference < 0) or reference.sum() <= 0:
        raise ValueError("reference_frequencies must be a 1-D array of non-negative numbers with a positive sum.")
    reference = reference / reference.sum()
    predicted = np.asarray(predicted).astype(np.int64).ravel()
    if predicted.size == 0 or predicted.min() < 0 or predicted.max() >= reference.size:
        raise ValueError(f"predicted labels must be integers in [0, {reference.size}); got {predicted.size} labels.")
    counts = np.bincount(predicted, minlength=reference.size)
    histogram = counts / counts.sum()
    present = histogram > 0
    with np.errstate(divide="ignore"):
        kl = float(np.sum(histogram[present] * (np.log(histogram[present]) - np.log(reference[present]))))
    covered = int(np.sum(histogram >= COVERAGE_FRACTION_OF_SHARE * reference))
    return {
        "histogram": histogram.tolist(),
        "counts": counts.tolist(),
        "kl": kl,
        "classes_covered": covered,
        "n_classes": int(reference.size),
        "min_fraction": float(histogram.min()),
        "max_fraction": float(histogram.max()),
    }


def cluster_accuracy(labels, clusters):
    """Accuracy of the best one-to-one map from clusters to labels (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = np.asarray(labels).ravel(), np.asarray(clusters).ravel()
    if labels.shape != clusters.shape:
        raise ValueError(f"labels {labels.shape} and clusters {clusters.shape} must have the same length.")
    label_ids, label_index = np.unique(labels, return_inverse=True)
    cluster_ids, cluster_index = np.unique(clusters, return_inverse=True)
    table = np.zeros((len(cluster_ids), len(label_ids)), np.int64)
    np.add.at(table, (cluster_index, label_index), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / labels.size)


def clustering_scores(codes, labels, n_clusters=None, seed=0):
    """k-means on codes (n, d) against the labels: {"nmi", "accuracy", "n_clusters"}.

    `n_clusters` defaults to the number of distinct labels.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    codes = _as_2d("codes", codes)
    labels = np.asarray(labels).ravel()
    if len(codes) != len(labels):
        raise ValueError(f"{len(codes)} codes but {len(labels)} labels.")
    n_clusters = n_clusters or len(np.unique(labels))
    clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(codes)
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "accuracy": cluster_accuracy(labels, clusters),
        "n_clusters": int(n_clusters),
    }
