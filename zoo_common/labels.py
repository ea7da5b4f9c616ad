"""Class labels for conditional models, checked the same way in Keras (zoo) and in the exported
runtime (export.runtime, which does not load Keras)."""

import numpy as np


def every_class(n, num_classes):
    """The labels of `n` images when none are asked for: every class in turn, 0, 1, ..., num_classes - 1, 0, ..."""
    return np.arange(n, dtype=np.int64) % num_classes


def check(labels, n, num_classes, where, per="image"):
    """`labels` (one int for all, or one per `per`) as int64 (n,), each in [0, num_classes);
    a ValueError that says what is wrong otherwise."""
    values = np.asarray(labels)
    if values.ndim == 0 and n is not None:
        values = np.full((n,), values)
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integer class indices in 0..{num_classes - 1}; got {values.dtype} "
                         "values.")
    if values.ndim != 1 or (n is not None and len(values) != n):
        raise ValueError(f"{where}: labels must hold one class per {per}, shape ({n},); got shape {values.shape}.")
    outside = np.flatnonzero((values < 0) | (values >= num_classes))
    if outside.size:
        raise ValueError(f"{where}: labels hold {int(values[outside[0]])} at index {int(outside[0])}, outside the "
                         f"classes 0..{num_classes - 1} ({outside.size} such label{'s' if outside.size > 1 else ''}).")
    return values.astype(np.int64)
