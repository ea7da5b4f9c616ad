"""Peer: the TensorFlow "Deep Convolutional Generative Adversarial Network"
tutorial, written here from its published description for side-by-side
comparisons.

As published: images scaled to [-1, 1]; a generator Dense 7*7*256 (no bias),
BatchNorm, LeakyReLU, reshape, Conv2DTranspose 128 5x5 stride 1, 64 5x5
stride 2 (each without bias, with BatchNorm and LeakyReLU), 1 5x5 stride 2
tanh; a discriminator Conv2D 64 5x5 stride 2, LeakyReLU, Dropout 0.3, Conv2D
128 5x5 stride 2, LeakyReLU, Dropout 0.3, Dense 1 (a logit); binary
cross-entropy on logits; Adam(1e-4) for each network; a `tf.function`
`train_step` with two GradientTapes over one forward pass; batch 256; noise
dimension 100. One deviation: the noise batch matches the image batch (the
tutorial always draws 256, also for the last, smaller batch).

`fit` runs the tutorial's epoch loop; `generate`/`sample` return images in
[0, 1] (the zoo's convention). Nothing runs at import time.

Example:
>>> gan = TFTutorialDCGAN(seed=0)
>>> gan.fit(images, epochs=50)      # images: (n, 28, 28, 1) in [0, 1]
>>> samples = gan.sample(16, seed=0)
"""

import keras
from keras import layers

NOISE_DIM = 100
BATCH_SIZE = 256


def make_generator_model(noise_dim=NOISE_DIM):
    return keras.Sequential([
        keras.Input(shape=(noise_dim,)),
        layers.Dense(7 * 7 * 256, use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"),
    ], name="generator")


def make_discriminator_model():
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(0.3),
        layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")


class TFTutorialDCGAN:
    """The tutorial's generator, discriminator, optimizers and training step."""

    def __init__(self, noise_dim=NOISE_DIM, seed=None):
        import tensorflow as tf

        if seed is not None:
            keras.utils.set_random_seed(seed)
        self.latent_dim = noise_dim
        self.seed = seed
        self.generator = make_generator_model(noise_dim)
        self.discriminator = make_discriminator_model()
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_optimizer = keras.optimizers.Adam(1e-4)
        self.discriminator_optimizer = keras.optimizers.Adam(1e-4)
        self._step = tf.function(self._train_step)

    def discriminator_loss(self, real_output, fake_output):
        import tensorflow as tf

        real_loss = self.cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = self.cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(self, fake_output):
        import tensorflow as tf

        return self.cross_entropy(tf.ones_like(fake_output), fake_output)

    def _train_step(self, images):
        import tensorflow as tf

        noise = tf.random.normal([tf.shape(images)[0], self.latent_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = self.generator(noise, training=True)
            real_output = self.discriminator(images, training=True)
            fake_output = self.discriminator(generated_images, training=True)
            gen_loss = self.generator_loss(fake_output)
            disc_loss = self.discriminator_loss(real_output, fake_output)
        gen_grads = gen_tape.gradient(gen_loss, self.generator.trainable_variables)
        disc_grads = disc_tape.gradient(disc_loss, self.discriminator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(gen_grads, self.generator.trainable_variables))
        self.discriminator_optimizer.apply_gradients(zip(disc_grads, self.discriminator.trainable_variables))
        return gen_loss, disc_loss

    def train_step(self, images):
        """One update of both networks on a batch of images in [-1, 1]. Returns (gen_loss, disc_loss)."""
        return self._step(images)

    def dataset(self, images, batch_size=BATCH_SIZE, seed=None):
        """The tutorial's pipeline: [0, 1] images -> [-1, 1], shuffled over the whole set, batched."""
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(images).map(lambda x: 2.0 * x - 1.0)
        return ds.shuffle(len(images), seed=seed).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def fit(self, images, epochs=1, batch_size=BATCH_SIZE):
        """Train for `epochs` over `images` (n, 28, 28, 1) in [0, 1]. Returns per-epoch mean losses."""
        history = {"gen_loss": [], "disc_loss": []}
        ds = self.dataset(images, batch_size, seed=self.seed)
        for _ in range(epochs):
            losses = [self.train_step(batch) for batch in ds]
            history["gen_loss"].append(float(sum(float(g) for g, _ in losses) / len(losses)))
            history["disc_loss"].append(float(sum(float(d) for _, d in losses) / len(losses)))
        return history

    def generate(self, z):
        """Noise (n, 100) -> images in [0, 1]."""
        return 0.5 * (self.generator(keras.ops.convert_to_tensor(z, "float32"), training=False) + 1.0)

    def sample(self, n, seed=None):
        return self.generate(keras.random.normal((n, self.latent_dim), seed=seed))
