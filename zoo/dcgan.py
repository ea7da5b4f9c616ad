"""The deep convolutional GAN."""

import keras
from keras import ops

from zoo import _checks, dcgan_steps, networks, replicas
from zoo.gan import TwoPlayerGAN

GAN_LOSSES = ("non_saturating", "minimax")
_WIDTHS = (64, 128, 256, 512)


def default_stages(image_shape):
    """Up/down-sampling stages: as many halvings as keep the bottom at >= 4 pixels (2 to 4)."""
    height, width, _ = image_shape
    stages = 2
    while stages < 4 and height % 2 ** (stages + 1) == 0 and width % 2 ** (stages + 1) == 0 and min(height, width) // 2 ** (stages + 1) >= 4:
        stages += 1
    return stages


@keras.saving.register_keras_serializable(package="genzoo")
class DCGAN(TwoPlayerGAN):
    """Deep convolutional GAN (Radford et al. 2016) trained on the game of
    Goodfellow et al. (2014).

    Each batch makes one discriminator update on J(D) = -E log D(x) -
    E log(1 - D(G(z))), then one generator update judged by the updated
    discriminator. Both updates share the batch's one generator pass G(z) (as
    in the PyTorch DCGAN example), which saves a generator forward per step
    without changing the order of the game. The generator
    has strided transposed convolutions, batch norm and ReLU, and a tanh
    output; the discriminator strided convolutions, batch norm (not on its
    input layer) and LeakyReLU(0.2). The tanh range [-1, 1] stays inside:
    `generate`/`sample` return images in [0, 1], and `fit` takes [0, 1] images.

    Args:
        image_shape: tuple (H, W, C). H and W divisible by 2**stages, C in {1, 3}.
        latent_dim: int. Dimension of z ~ N(0, I). Defaults to 100.
        loss: str. `"non_saturating"`: G descends -log D(G(z)); `"minimax"`:
            G descends log(1 - D(G(z))), the original game. Defaults to
            `"non_saturating"`.
        generator_filters: tuple of int or None. Widths before each
            upsampling, widest first. Defaults to None: (128, 64) for 28x28,
            (256, 128, 64) for 32x32, (512, 256, 128, 64) for 64x64.
        discriminator_filters: tuple of int or None. Widths of the strided
            convolutions. Defaults to None: the generator's, reversed.
        kernel_size: int. Defaults to 5.
        num_classes: int or None. A conditional DCGAN (Mirza & Osindero
            2014): G sees the one-hot label beside z, D as constant image
            channels; fakes are drawn for the real batch's labels. `fit(images,
            labels)`, `sample(n, labels=7)`, `generate(z, labels)`. Defaults
            to None.
        seed: int or None. Seeds the training noise and `sample()`.
        sync_batch_norm: bool. Under a tf.distribute strategy, compute the
            batch-norm statistics over the global batch (synchronised across
            replicas: the step then equals one device's) instead of per
            replica (the usual multi-GPU DCGAN, cheaper). Defaults to False.
            No effect on one device, nor on JAX (its DataParallel step
            already sees the global batch).
        dtype: the Keras dtype policy, e.g. "mixed_bfloat16"; saved in the
            config. Defaults to None (the global policy).

    Tracked: `d_loss`, `g_loss`, `real_score` (mean D(x)), `fake_score`
    (mean D(G(z)) seen by the discriminator update).

    Trains on every Keras backend with the same game: the step is written
    once per backend (TensorFlow tapes, a stateless JAX function, PyTorch
    autograd), side by side in `zoo.dcgan_steps`. Batch normalisation
    normalises the real and the fake batch separately (two discriminator
    calls), as in Radford et al.'s code.

    Example:
    >>> gan = DCGAN((28, 28, 1))
    >>> gan.compile()  # Adam(2e-4, beta_1=0.5) for both players
    >>> gan.fit(images, epochs=20)
    >>> grid = gan.sample(64, seed=0)
    """

    def __init__(
        self,
        image_shape,
        latent_dim=100,
        loss="non_saturating",
        generator_filters=None,
        discriminator_filters=None,
        kernel_size=5,
        num_classes=None,
        seed=None,
        sync_batch_norm=False,
        **kwargs,
    ):
        # Validate the basic shape before deriving the default depth from it.
        stages = default_stages(_checks.image_shape(image_shape, 2))
        if generator_filters is not None:
            generator_filters = _checks.filters("generator_filters", generator_filters)
            stages = len(generator_filters)
        if discriminator_filters is not None:
            discriminator_filters = _checks.filters("discriminator_filters", discriminator_filters)
            stages = max(stages, len(discriminator_filters))
        super().__init__(image_shape, latent_dim, downsamplings=stages, seed=seed, **kwargs)
        self.loss_name = _checks.choice("loss", loss, GAN_LOSSES)
        self.generator_filters = generator_filters
        self.discriminator_filters = discriminator_filters
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        g_widths = generator_filters or _WIDTHS[:stages][::-1]
        d_widths = discriminator_filters or g_widths[::-1]
        policy = self.dtype_policy
        self.sync_batch_norm = bool(sync_batch_norm)
        # JAX's DataParallel sees the global batch in one computation: its statistics are global already.
        synced = self.sync_batch_norm and keras.backend.backend() == "tensorflow"
        self.num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)
        extra = self.num_classes or 0  # the label's one-hot entries / image channels
        height, width, channels = self.image_shape
        self.generator = networks.dcgan_generator(self.image_shape, self.latent_dim + extra, g_widths,
                                                  self.kernel_size, dtype=policy, synchronized=synced)
        self.discriminator = networks.dcgan_discriminator((height, width, channels + extra), d_widths,
                                                          self.kernel_size, dtype=policy, synchronized=synced)
        self._noise_seed = keras.random.SeedGenerator(self._sub_seed(1))
        self._add_trackers("d_loss", "g_loss", "real_score", "fake_score")
        self.built = True

    kind = "dcgan"
    _config_attributes = {"loss": "loss_name"}  # `loss` is Keras' compile argument
    default_learning_rate = 2e-4
    adam_options = {"beta_1": 0.5}  # Radford et al. (2016)
    steps = dcgan_steps

    # -- the public edge: [0, 1] images (generate, call: TwoPlayerGAN) ----------
    def discriminate(self, images, labels=None):
        """D's probability that each image in [0, 1] is real (conditional: real and of class `labels`)."""
        images = self._images(images, "DCGAN.discriminate")
        condition = self._one_hot(labels, images.shape[0], "DCGAN.discriminate")
        logits = self.discriminator(self._image_input(2.0 * images - 1.0, condition), training=False)
        return ops.sigmoid(logits[:, 0])

    # -- training: one step per backend, in zoo.dcgan_steps (dispatched by TwoPlayerGAN) --
    def _noise(self, batch_size):
        return replicas.normal((batch_size, self.latent_dim), seed=self._noise_seed)


def default_optimizer():
    """Adam(2e-4, beta_1=0.5), the setting of Radford et al. (2016)."""
    return DCGAN.default_optimizer()
