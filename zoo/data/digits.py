"""The `digits` source: scikit-learn's bundled 8x8 handwritten digits as arrays."""

import numpy as np

from zoo.data.source import check_split

# Fraction of the bundled digits held out as the "test" split.
_DIGITS_TEST_FRACTION = 0.2


def _split_arrays(images, labels, split, test_fraction, seed=0):
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(len(images) * test_fraction))
    chosen = order[:n_test] if split == "test" else order[n_test:]
    return images[chosen], labels[chosen]


def digits_arrays(split="train"):
    """The scikit-learn digits as (images (N, 8, 8, 1) float32 in [0, 1], labels (N,) int64).

    A fixed 80/20 permutation split gives "train" (1,438) and "test" (359).
    """
    from sklearn.datasets import load_digits

    check_split("digits", split)
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]
    return _split_arrays(images, bunch.target.astype(np.int64), split, _DIGITS_TEST_FRACTION)
