"""What the zoo's models share: input handling, the TensorFlow training guard,
loss trackers and the saving plumbing of a model whose networks are built in
its constructor."""

import keras
from keras import ops

from zoo import _checks


def _tensorflow():
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"genzoo trains with the TensorFlow backend, but Keras is running on {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras to train; encode/decode/generate work on any backend."
        )
    import tensorflow as tf

    return tf


class GenerativeModel(keras.Model):
    """Base of the zoo's models; not used directly.

    Subclasses build their sub-networks in `__init__` (so the model is built
    as soon as it exists), list their `keras.metrics.Mean` trackers in
    `self._trackers`, and describe their hyperparameters in `_hyperparameters()`.
    """

    def __init__(self, image_shape, latent_dim, downsamplings=2, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = _checks.image_shape(image_shape, downsamplings)
        self.latent_dim = _checks.positive_int("latent_dim", latent_dim)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed={seed!r} must be an integer or None.")
        self.seed = seed
        self._sample_seed = keras.random.SeedGenerator(seed)
        self._trackers = []

    def _sub_seed(self, offset):
        """A distinct, reproducible seed for an owned random layer (None stays None)."""
        return None if self.seed is None else self.seed + offset

    def _add_trackers(self, *names):
        self._trackers = [keras.metrics.Mean(name=name) for name in names]
        self._tracker_by_name = {t.name: t for t in self._trackers}

    @property
    def metrics(self):
        return list(self._trackers)

    def _update_trackers(self, **values):
        for name, value in values.items():
            self._tracker_by_name[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def _images(self, data, where):
        """Take the images out of `x`, `(x,)`, `(x, y)`, `(x, y, w)` or {"image": x}."""
        if isinstance(data, dict):
            data = data.get("image", data.get("images"))
        while isinstance(data, (tuple, list)) and data:
            data = data[0]
        _checks.batch_images(data, self.image_shape, where)
        return ops.cast(data, "float32")

    def _latents(self, z, where):
        z = ops.convert_to_tensor(z, dtype="float32")
        if len(z.shape) != 2 or (z.shape[-1] is not None and z.shape[-1] != self.latent_dim):
            raise ValueError(
                f"{where}: z must have shape (batch, latent_dim) = (batch, {self.latent_dim}); got {tuple(z.shape)}."
            )
        return z

    def _prior_sample(self, n, seed):
        n = _checks.positive_int("n", n)
        return keras.random.normal((n, self.latent_dim), seed=self._sample_seed if seed is None else seed)

    def build(self, input_shape=None):
        # Every network is built (from keras.Input) in __init__; nothing to create.
        self.built = True

    def _hyperparameters(self):
        raise NotImplementedError

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(self._hyperparameters())
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "image_shape" in config:
            config["image_shape"] = tuple(config["image_shape"])
        for key in ("filters", "generator_filters", "discriminator_filters"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(**config)
