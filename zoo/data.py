"""Every dataset source -> one batched tf.data pipeline of float32 NHWC images in [0, 1].

Sources (the `source` argument of `load`):
- `digits`: scikit-learn's bundled 8x8 handwritten digits (offline, 1,797 images).
"""

import numpy as np

# Fraction of the bundled digits held out as the "test" split.
_DIGITS_TEST_FRACTION = 0.2
SPLITS = ("train", "test")


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

    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not available for 'digits'; allowed values are 'train' and 'test'.")
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]
    return _split_arrays(images, bunch.target.astype(np.int64), split, _DIGITS_TEST_FRACTION)


def load(source, split="train", batch_size=128, shuffle=True, seed=None, take=None):
    """Load `source` as a batched, (optionally) shuffled, prefetched tf.data.Dataset
    of `(images, labels)`, images float32 NHWC in [0, 1].

    Args:
        source: str. `"digits"`.
        split: str. `"train"` or `"test"`.
        batch_size: int.
        shuffle: bool. Reshuffle every epoch.
        seed: int or None. Seed of the shuffle, for a reproducible order.
        take: int or None. Keep only the first `take` examples (smoke runs).
    """
    import tensorflow as tf

    if source != "digits":
        raise ValueError(f"source={source!r} is not a known dataset; allowed values are 'digits'.")
    images, labels = digits_arrays(split)
    if take is not None:
        images, labels = images[:take], labels[:take]
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
