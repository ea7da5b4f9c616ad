"""Peer: the keras.io "Variational AutoEncoder" example (F. Chollet), written
here from its published description for side-by-side comparisons.

As published: a conv encoder (Conv2D 32 and 64, 3x3, stride 2, ReLU; Flatten;
Dense 16 ReLU; Dense heads for z_mean and z_log_var) with a 2-D latent, a
decoder (Dense 7*7*64 ReLU; Conv2DTranspose 64 and 32, 3x3, stride 2, ReLU;
Conv2DTranspose 1, 3x3, sigmoid), and a custom `train_step` whose loss is the
binary cross-entropy summed over the pixels plus the KL term, with Adam.

Added for the evaluation only (the example has no such API): `encode`,
`decode`, `log_likelihood` and `sample`, the duck-typed interface that
`zoo.evaluate` and `zoo.latent` use. Nothing runs at import time.

Example:
>>> vae = KerasIOVAE(seed=0)
>>> vae.compile(optimizer=keras.optimizers.Adam())
>>> vae.fit(images, epochs=30, batch_size=128)   # images: (n, 28, 28, 1) in [0, 1]
"""

import keras
from keras import layers, ops

IMAGE_SHAPE = (28, 28, 1)
# The example clips probabilities like keras' binary_crossentropy does.
_EPSILON = 1e-7


class _Sampling(layers.Layer):
    """z = z_mean + exp(z_log_var / 2) * eps."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def build_encoder(latent_dim=2, seed=None):
    images = keras.Input(shape=IMAGE_SHAPE)
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(images)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = _Sampling(seed=seed)([z_mean, z_log_var])
    return keras.Model(images, [z_mean, z_log_var, z], name="encoder")


def build_decoder(latent_dim=2):
    z = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(z)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(z, outputs, name="decoder")


def _bernoulli_log_likelihood(images, probabilities):
    p = ops.clip(probabilities, _EPSILON, 1.0 - _EPSILON)
    return ops.sum(images * ops.log(p) + (1.0 - images) * ops.log(1.0 - p), axis=(1, 2, 3))


class KerasIOVAE(keras.Model):
    """The keras.io VAE (2-D latent by default) with the zoo's evaluation interface."""

    def __init__(self, latent_dim=2, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.encoder = build_encoder(latent_dim, seed)
        self.decoder = build_decoder(latent_dim)
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self._prior_seed = keras.random.SeedGenerator(seed)

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, images, training=None):
        return self.decoder(self.encoder(images, training=training)[2], training=training)

    def train_step(self, data):
        import tensorflow as tf

        if isinstance(data, (tuple, list)):
            data = data[0]
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data, training=True)
            reconstruction = self.decoder(z, training=True)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}

    # -- the zoo's evaluation contract (zoo.base.GenerativeModel; not part of the example) --
    kind = "keras_io_vae"
    has_encoder = True
    encoder_outputs = ("mean", "log_var")
    has_prior = True
    has_likelihood = True

    def embed(self, images):
        return self.encode(images)[0]

    def generate(self, z):
        return self.decode(z)

    def log_importance_weights(self, images, eps):
        """As zoo.vae.VAE.log_importance_weights, for the example's networks."""
        from zoo import losses

        images = ops.convert_to_tensor(images, "float32")
        eps = ops.convert_to_tensor(eps, "float32")
        mean, log_var = self.encode(images)
        k, batch = ops.shape(eps)[0], ops.shape(images)[0]
        z = mean[None] + ops.exp(0.5 * log_var)[None] * eps
        probabilities = self.decoder(ops.reshape(z, (-1, self.latent_dim)), training=False)
        tiled = ops.reshape(ops.broadcast_to(images[None], (k,) + tuple(ops.shape(images))), (-1,) + tuple(images.shape[1:]))
        log_px = ops.reshape(self.log_likelihood(tiled, probabilities), (k, batch))
        return losses.log_importance_weights(log_px, z, eps, log_var[None])

    def encode(self, images):
        z_mean, z_log_var, _ = self.encoder(ops.convert_to_tensor(images, "float32"), training=False)
        return z_mean, z_log_var

    def decode(self, z):
        return self.decoder(ops.convert_to_tensor(z, "float32"), training=False)

    def log_likelihood(self, images, probabilities):
        """log p(x|z) per image under the example's (clipped) Bernoulli decoder."""
        return _bernoulli_log_likelihood(ops.convert_to_tensor(images, "float32"), probabilities)

    def sample(self, n, seed=None):
        z = keras.random.normal((n, self.latent_dim), seed=self._prior_seed if seed is None else seed)
        return self.decode(z)
