"""Argument checks shared by the models: one clear ValueError per bad input."""

import numbers


def image_shape(value, downsamplings=2):
    """Validate `image_shape` as (H, W, C), H and W divisible by 2**downsamplings, C in {1, 3}."""
    factor = 2**downsamplings
    hint = f"expected (height, width, channels) with height and width divisible by {factor} and channels in {{1, 3}}, e.g. (28, 28, 1) or (32, 32, 3)"
    try:
        shape = tuple(value)
    except TypeError:
        raise ValueError(f"image_shape={value!r} is not a shape: {hint}.") from None
    if len(shape) != 3 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape):
        raise ValueError(f"image_shape={value!r} must be three integers: {hint}.")
    height, width, channels = (int(d) for d in shape)
    if channels not in (1, 3):
        raise ValueError(f"image_shape={value!r} has {channels} channels; allowed channels are 1 and 3: {hint}.")
    if height < factor or width < factor or height % factor or width % factor:
        raise ValueError(
            f"image_shape={value!r}: height and width must be positive multiples of {factor} "
            f"(the networks halve the resolution {downsamplings} times); resize or crop your images: {hint}."
        )
    return (height, width, channels)


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1.")
    return int(value)


def non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}={value!r} must be an integer >= 0.")
    return int(value)


def positive_float(name, value):
    """A finite number > 0 (a learning rate, a scale): NaN, inf, 0 and negatives are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
        raise ValueError(f"{name}={value!r} must be a finite number > 0.")
    return float(value)


def non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise ValueError(f"{name}={value!r} must be a finite number >= 0.")
    return float(value)


def choice(name, value, allowed):
    if value not in allowed:
        allowed_text = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not supported; allowed values are {allowed_text}.")
    return value


def _widths(name, value, what):
    """`value` as a tuple of positive ints; `what` says what else would have been accepted."""
    try:
        widths = tuple(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} must be {what}.") from None
    return tuple(positive_int(f"{name}[{i}]", w) for i, w in enumerate(widths))


def filters(name, value, allow_empty=False):
    """Layer widths, e.g. (32, 64); `allow_empty`: () is allowed (no convolutions: an MLP)."""
    widths = _widths(name, value, "a sequence of positive integers, e.g. (32, 64)")
    if not widths and not allow_empty:
        raise ValueError(f"{name}={value!r} must name at least one layer width, e.g. (32, 64).")
    return widths


def hidden_widths(name, value):
    """A Dense width (int, 0 for none) or a sequence of widths, e.g. (512, 512): kept as given
    (an int stays an int, so older configs round-trip), validated."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return non_negative_int(name, value)
    return _widths(name, value, "an integer >= 0 or a sequence of positive integers, e.g. (512, 512)")


def class_labels(labels, n, num_classes, where):
    """`labels` (one int for all, or one per image) as an int32 array of shape (n,), each in [0, num_classes)."""
    from zoo_common import labels as _labels

    return _labels.check(labels, n, num_classes, where).astype("int32")


def labelled(x, y, num_classes, where="fit"):
    """`fit`'s x and y for a conditional model: {"image": images, "label": labels} and None.

    Takes images and labels as arrays (x, y), a dict with "image" and "label",
    or a `tf.data.Dataset` of (images, labels) pairs (checked batch by batch).
    """
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec"):
        return _checked_dataset(x, where, num_classes), y
    if isinstance(x, dict) and y is None:
        x, y = x.get("image", x.get("images")), x.get("label", x.get("labels"))
    if y is None:
        raise ValueError(f"{where}: the model is conditional (num_classes={num_classes}) and learns from labelled "
                         "images: pass fit(images, labels), or a dataset of (images, labels) pairs.")
    images = training_images(x, where)
    labels = class_labels(y, len(images), num_classes, where)
    return {"image": images, "label": labels}, None


def batch_images(images, expected_shape, where):
    """Check the static shape of a batch of images against the model's image_shape."""
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(
            f"{where}: images must be a 4-D float batch (batch, height, width, channels) of shape "
            f"(None, {', '.join(map(str, expected_shape))}); got shape {shape}. "
            "Add a batch axis and a channel axis (e.g. x[..., None] for grey images)."
        )
    got = tuple(shape[1:])
    if any(g is not None and g != e for g, e in zip(got, expected_shape)):
        raise ValueError(
            f"{where}: images have shape {got} per example but the model was built for "
            f"image_shape={tuple(expected_shape)}; resize the data or build the model with "
            f"image_shape={tuple(g for g in got)}."
        )


_RANGE_HINT = "the models take float images in [0, 1] (divide uint8 images by 255)"


def training_images(x, where="fit"):
    """`x` as given to `fit`, with its images checked: float, finite and in [0, 1].

    Arrays and tensors are checked at once (one ValueError with the offending
    values); a `tf.data.Dataset` gets a check on each batch, whose failure
    stops `fit` with this message; other inputs (generators, PyDatasets) pass.
    """
    import numpy as np

    if x is None:
        return x
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec"):
        return _checked_dataset(x, where)
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    import keras

    values = x if isinstance(x, np.ndarray) else keras.ops.convert_to_numpy(x)
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"{where}: images are {values.dtype}, not float; {_RANGE_HINT}.")
    finite = np.isfinite(values)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{where}: images hold {int((~finite).sum())} NaN or infinite values (the first at index "
                         f"{first}); remove or repair those images.")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{where}: images range from {low:g} to {high:g}, outside [0, 1]; {_RANGE_HINT}.")
    return x


def _checked_dataset(ds, where, num_classes=None):
    """`ds` with a check of each batch's images; with `num_classes`, its (images, labels) pairs
    checked and given to a conditional model as {"image": images, "label": labels}."""
    import tensorflow as tf

    spec = ds.element_spec
    image_spec = spec[0] if isinstance(spec, tuple) else spec
    if num_classes is not None and not (isinstance(spec, tuple) and len(spec) >= 2):
        raise ValueError(f"{where}: the model is conditional (num_classes={num_classes}) and learns from labelled "
                         "images: the dataset must yield (images, labels) pairs.")
    if not isinstance(image_spec, tf.TensorSpec):
        return ds
    if not image_spec.dtype.is_floating:
        raise ValueError(f"{where}: the dataset yields {image_spec.dtype.name} images, not float; {_RANGE_HINT}.")
    if num_classes is not None and not spec[1].dtype.is_integer:
        raise ValueError(f"{where}: the dataset's labels are {spec[1].dtype.name}; they must be integer class indices "
                         f"in 0..{num_classes - 1}.")

    def check(*element):
        images = element[0]
        asserts = [
            tf.debugging.assert_all_finite(images, f"{where}: a batch holds NaN or infinite pixel values"),
            tf.debugging.assert_greater_equal(images, tf.zeros([], images.dtype),
                                              message=f"{where}: pixel values below 0; {_RANGE_HINT}", summarize=1),
            tf.debugging.assert_less_equal(images, tf.ones([], images.dtype),
                                           message=f"{where}: pixel values above 1; {_RANGE_HINT}", summarize=1),
        ]
        if num_classes is not None:
            labels = element[1]
            asserts += [
                tf.debugging.assert_greater_equal(labels, tf.zeros([], labels.dtype), summarize=1,
                                                  message=f"{where}: labels below 0, outside classes 0..{num_classes - 1}"),
                tf.debugging.assert_less(labels, tf.cast(num_classes, labels.dtype), summarize=1,
                                         message=f"{where}: labels of {num_classes} or more, outside classes 0..{num_classes - 1}"),
            ]
        with tf.control_dependencies(asserts):
            images = tf.identity(images)
        if num_classes is not None:
            return {"image": images, "label": tf.identity(element[1])}
        return (images, *element[1:]) if len(element) > 1 else images

    checked = ds.map(check)
    for name in ("class_names", "num_examples", "image_shape", "skipped_files", "steps_per_epoch", "first_undecodable"):
        if hasattr(ds, name):  # the attributes zoo.data.load puts on its datasets
            setattr(checked, name, getattr(ds, name))
    return checked
