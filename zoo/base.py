"""The contract every genzoo model keeps, and the plumbing they share.

Code outside a model (training, callbacks, evaluation, latent tools, export,
tests) talks to a `GenerativeModel` only through what is declared here, and
never asks which class it holds:

    latent_dim, image_shape          the shapes
    kind                             "ae", "dae", "vae", "dcgan": the model's name in files
    generate(z) / sample(n, seed)    latents -> images in [0, 1]; z ~ N(0, I) -> images
    has_encoder, encoder_outputs     whether `encode` exists and what it returns
    encode(x), encode_named(x), embed(x)
    has_prior                        whether `sample` draws from a prior the model was trained for
    has_likelihood, log_importance_weights(x, eps)   the pieces of the IWAE estimate
    optimizers, training_steps, compile_default(...)

Training runs on every Keras backend: a model with one optimizer computes its
loss in `compute_loss` (Keras' own backend-neutral hook) and a game with two
optimizers (the DCGAN) has one small train step per backend.
"""

import inspect

import keras
import numpy as np
from keras import ops

from zoo import _checks, replicas
from zoo_common.labels import every_class


@keras.saving.register_keras_serializable(package="genzoo")
class GenerativeModel(keras.Model):
    """Base of the zoo's models; not used directly.

    Subclasses build their sub-networks in `__init__` (so the model is built
    as soon as it exists) with `dtype=self.dtype_policy`, call
    `_add_trackers(...)` with their tracked values, keep each constructor
    argument in an attribute of the same name (or say which in
    `_config_attributes`; `get_config` reads them back), and implement
    `generate` (and `encode` where they have an encoder).

    Args:
        dtype: str, dict or `keras.DTypePolicy`, e.g. "mixed_bfloat16". The
            policy the networks compute in; saved in the config, so a
            reloaded model computes as it was trained. Defaults to None: the
            global policy (`keras.mixed_precision.set_global_policy`).
    """

    kind = None
    has_encoder = False
    encoder_outputs = ()
    has_prior = True
    has_likelihood = False

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' `fit`, with the training images checked at the edge: float, finite, in [0, 1].

        Arrays are checked before training starts; a `tf.data.Dataset` batch by
        batch (a bad batch stops `fit` with the message). See `keras.Model.fit`.
        """
        validation = kwargs.get("validation_data")
        if self.num_classes is not None:  # conditional: the labels go with the images, as {"image", "label"}
            x, y = _checks.labelled(x, y, self.num_classes, "fit")
            if isinstance(validation, tuple) and len(validation) >= 2:
                validation = _checks.labelled(validation[0], validation[1], self.num_classes, "fit: validation_data")[0]
            elif validation is not None:
                validation = _checks.labelled(validation, None, self.num_classes, "fit: validation_data")[0]
            if validation is not None:
                kwargs["validation_data"] = validation
            return super().fit(x, y, *args, **kwargs)
        if isinstance(validation, tuple) and validation:
            kwargs["validation_data"] = (_checks.training_images(validation[0], "fit: validation_data"), *validation[1:])
        elif validation is not None:
            kwargs["validation_data"] = _checks.training_images(validation, "fit: validation_data")
        return super().fit(_checks.training_images(x, "fit"), y, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3's TensorFlow trainer builds a model made in a strategy's scope from the first batch,
        # averaged over replicas with strategy.reduce, which a MultiWorkerMirroredStrategy cannot do
        # on a (x, y)-like batch (keras-team/keras#20585); the build needs shapes only: one replica's batch.
        if iterator is not None and replicas.across_workers(self.distribute_strategy):
            for _, _, batches in iterator:
                data_batch = replicas.local_batch(self.distribute_strategy, next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def __init__(self, image_shape, latent_dim, downsamplings=2, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = _checks.image_shape(image_shape, downsamplings)
        self.latent_dim = _checks.positive_int("latent_dim", latent_dim)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed={seed!r} must be an integer or None.")
        self.seed = seed
        self._sample_seed = keras.random.SeedGenerator(seed)
        self._trackers = []

    # -- the contract ------------------------------------------------------------
    # The classes of a conditional model (its networks see the label; `generate`, `sample`
    # and `encode` take labels=), else None.
    num_classes = None

    def generate(self, z, labels=None):
        """Latents (batch, latent_dim) -> images in [0, 1], NHWC (a conditional model: of class `labels`)."""
        raise NotImplementedError

    def sample(self, n, seed=None, labels=None):
        """`n` images from z ~ N(0, I). `seed` (int or SeedGenerator) makes it reproducible.

        A conditional model draws images of class `labels` (one int, or one per
        image); without labels, every class in turn (0, 1, ..., 0, 1, ...).
        For a model without a prior (`has_prior` False: the plain autoencoder)
        this only shows what the decoder makes of N(0, I) codes."""
        z = self._prior_sample(n, seed)
        if self.num_classes is None:
            self._one_hot(labels, n, f"{type(self).__name__}.sample")  # refuses labels=
            return self.generate(z)
        return self.generate(z, every_class(n, self.num_classes) if labels is None else labels)

    def encode(self, images):
        raise NotImplementedError(
            f"{type(self).__name__} has no encoder (has_encoder is False); only models with has_encoder "
            "(Autoencoder, VAE) map images to latents."
        )

    def encode_named(self, images, labels=None):
        """`encode`'s outputs by the names in `encoder_outputs`, e.g. {"mean": ..., "log_var": ...}."""
        outputs = self.encode(images) if labels is None else self.encode(images, labels)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        return dict(zip(self.encoder_outputs, outputs))

    def embed(self, images, labels=None):
        """One point in latent space per image (the AE's code, the mean of the VAE's q(z|x))."""
        return self.encode_named(images, labels)[self.encoder_outputs[0]]

    def log_importance_weights(self, images, eps):
        """log p(x|z) + log p(z) - log q(z|x) for z = mean + sigma * eps, eps of shape (k, batch, latent_dim)."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no likelihood (has_likelihood is False); log p(x) estimates need a VAE."
        )

    @property
    def optimizers(self):
        """The optimizers of the compiled model, one per player."""
        optimizer = getattr(self, "optimizer", None)
        return [optimizer] if isinstance(optimizer, keras.optimizers.Optimizer) else []

    @property
    def training_steps(self):
        """Optimizer steps taken (the generator's for a GAN), or None if never compiled."""
        optimizers = self.optimizers
        if not getattr(self, "compiled", False) or not optimizers:
            return None
        return int(ops.convert_to_numpy(optimizers[-1].iterations))

    default_learning_rate = 1e-3
    # Keywords of `compile_default` for each player's own rate (none for one optimizer).
    player_learning_rates = ()

    def compile_default(self, learning_rate=None, **player_learning_rates):
        """Compile with the zoo's default optimizer (Adam) at `learning_rate`
        (default `default_learning_rate`). Models with several players take
        their own rates as keywords (the DCGAN: d_learning_rate, g_learning_rate)."""
        given = {k: v for k, v in player_learning_rates.items() if v is not None}
        if given:
            raise ValueError(f"{type(self).__name__} has one optimizer; drop {', '.join(given)} and use learning_rate.")
        rate = self.default_learning_rate if learning_rate is None else _checks.positive_float("learning_rate", learning_rate)
        self.compile(optimizer=keras.optimizers.Adam(rate))
        return self

    # -- shared plumbing ---------------------------------------------------------
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
        return self.get_metrics_result()

    def get_metrics_result(self):
        # Keras' own train step returns this too: both reach the logs in a form
        # that averages over the workers of a MultiWorkerMirroredStrategy.
        return replicas.loggable({m.name: m.result() for m in self.metrics})

    def _images(self, data, where):
        """Take the images out of `x`, `(x,)`, `(x, y)`, `(x, y, w)` or {"image": x}."""
        if isinstance(data, dict):
            data = data.get("image", data.get("images"))
        while isinstance(data, (tuple, list)) and data:
            data = data[0]
        _checks.batch_images(data, self.image_shape, where)
        return ops.cast(data, "float32")

    def _one_hot(self, labels, n, where):
        """`labels` (one int, or one per image) as one-hot (n, num_classes) for a conditional model;
        None for a model that is not (which refuses labels). Arrays and ints are checked."""
        name, k = type(self).__name__, self.num_classes
        if k is None:
            if labels is not None:
                raise ValueError(f"{where}: {name} is not conditional (built without num_classes); drop labels=.")
            return None
        if labels is None:
            raise ValueError(f"{where}: {name}(num_classes={k}) is conditional: pass labels= (a class in 0..{k - 1} per "
                             "image, or one class for all).")
        if isinstance(labels, (int, np.integer, list, tuple, np.ndarray)):
            labels = _checks.class_labels(labels, n, k, where)
        return ops.one_hot(ops.cast(labels, "int32"), k, dtype="float32")

    def _condition(self, data, where):
        """The one-hot labels of a training batch {"image", "label"} for a conditional model, else None."""
        if self.num_classes is None:
            return None
        while isinstance(data, (tuple, list)) and data:
            data = data[0]
        labels = data.get("label") if isinstance(data, dict) else None
        if labels is None:
            raise ValueError(f"{where}: {type(self).__name__}(num_classes={self.num_classes}) is conditional and "
                             "learns from labelled images: fit(images, labels), or a dataset of (images, labels).")
        return self._one_hot(labels, None, where)

    @staticmethod
    def _code_input(z, condition):
        """A network's latent input: z, and a conditional model's one-hot labels beside it."""
        return z if condition is None else ops.concatenate([z, ops.cast(condition, z.dtype)], axis=-1)

    @staticmethod
    def _image_input(images, condition):
        """A network's image input: the images, and a conditional model's one-hot labels as constant maps."""
        if condition is None:
            return images
        maps = ops.zeros_like(images[..., :1]) + ops.cast(condition, images.dtype)[:, None, None, :]
        return ops.concatenate([images, maps], axis=-1)

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

    # Constructor argument -> the attribute that holds it, where the names differ.
    _config_attributes = {}

    def _hyperparameters(self):
        """Every constructor argument of the model's class, read back from its attributes."""
        parameters = inspect.signature(type(self).__init__).parameters.values()
        names = [p.name for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        return {name: getattr(self, self._config_attributes.get(name, name)) for name in names}

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }
        config.update(self._hyperparameters())
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "image_shape" in config:
            config["image_shape"] = tuple(config["image_shape"])
        for key in ("filters", "generator_filters", "discriminator_filters", "critic_filters"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(**config)

    def invert(self, images, steps=200, learning_rate=0.05, init=None, prior_weight=0.0, batch_size=256, seed=0):
        """Latents whose `generate(z)` reconstructs `images` (in [0, 1]): Adam on z, the model frozen.

        Works for every model (through `generate`); `init="encoder"` starts
        from the encoder's code where the model has one. Returns
        `Inversion(z, error)`, error the per-image MSE. See `zoo.inversion.invert`.
        """
        from zoo import inversion

        return inversion.invert(self, images, steps=steps, learning_rate=learning_rate, init=init,
                                prior_weight=prior_weight, batch_size=batch_size, seed=seed)


class SingleOptimizerModel(GenerativeModel):
    """A model trained by one optimizer on one loss: Keras' own train step
    runs it on every backend; the model supplies `compute_loss`.

    In training (inside `fit`), `call` returns the raw outputs the loss needs
    (a dict); otherwise it returns reconstructions in [0, 1]. `compute_loss`
    also updates the trackers, as the Keras guide on `compute_loss` shows.
    Subclasses implement `_forward(images, training)` -> dict of raw outputs,
    `_reconstruct(images)` -> images in [0, 1], and `_loss_terms(images,
    outputs, training)` -> {tracker name: per-batch value} whose "loss" is the objective.
    """

    def _forward(self, images, training, condition=None):
        raise NotImplementedError

    def _reconstruct(self, images, condition=None):
        raise NotImplementedError

    def _loss_terms(self, images, outputs, training=False):
        raise NotImplementedError

    def call(self, images, training=None):
        where = f"{type(self).__name__}.call"
        # `images` may be {"image": ..., "label": ...}: a conditional model's batch.
        condition = self._condition(images, where)
        images = self._images(images, where)
        return self._forward(images, True, condition) if training else self._reconstruct(images, condition)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        where = f"{type(self).__name__}.{'fit' if training else 'evaluate'}"
        images = self._images(x, where)
        # evaluate() calls the model in inference mode, which returns images only:
        # the loss needs the raw outputs (and a sample of q(z|x) for the VAE's ELBO).
        outputs = y_pred if isinstance(y_pred, dict) else self._forward(images, False, self._condition(x, where))
        terms = self._loss_terms(images, outputs, training)
        self._update_trackers(**terms)
        total = terms["loss"]
        for extra in self.losses:  # regularisers, add_loss
            total = total + ops.cast(ops.sum(extra), total.dtype)
        return replicas.scale_loss(total)  # under tf.distribute, the replicas' gradients are summed
