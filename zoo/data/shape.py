"""The images' shape: the size and channels a pipeline gives (from the
arguments, the model it is for, the source) and the TF ops that convert an
image to them."""

import numpy as np

from zoo import _checks

# Size for sources whose images differ in size, when no image_size is given.
DEFAULT_MIXED_SIZE = (64, 64)
# The zoo's models halve the resolution twice with their default filters.
MODEL_SIZE_FACTOR = 4


def parse_image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        height, width = image_size
        return _checks.positive_int("image_size height", height), _checks.positive_int("image_size width", width)
    except (TypeError, ValueError):
        raise ValueError(f"image_size={image_size!r} must be an integer or (height, width) of positive integers.") from None


def model_needs(for_model):
    """(image_shape or None, binarize default, size factor) of `for_model` (None, CLI name or model)."""
    if for_model is None:
        return None, False, None
    if isinstance(for_model, str):
        import zoo

        _checks.choice("for_model", for_model, tuple(zoo.MODELS))
        return None, for_model == "vae", MODEL_SIZE_FACTOR
    return tuple(for_model.image_shape), getattr(for_model, "likelihood", None) == "bernoulli", None


def set_channels(image, have, want):
    import tensorflow as tf

    if have == 4:
        image, have = image[..., :3], 3
    if have == want:
        return image
    if want == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.image.rgb_to_grayscale(image)


def crop_resize(image, size):
    """Centre-crop to the aspect of `size`, then resize (bilinear, antialiased); keeps the dtype."""
    import tensorflow as tf

    height, width = size
    x = tf.cast(image, tf.float32)
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    crop_h = tf.clip_by_value(tf.cast(tf.round(wf * height / width), tf.int32), 1, h)
    crop_w = tf.clip_by_value(tf.cast(tf.round(hf * width / height), tf.int32), 1, w)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    x = tf.image.resize(x[top : top + crop_h, left : left + crop_w], (height, width), antialias=True)
    if image.dtype == tf.uint8:
        return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
    return tf.clip_by_value(x, 0.0, 1.0)
