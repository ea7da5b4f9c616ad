"""The Wasserstein GAN with gradient penalty (WGAN-GP), the standard remedy for mode collapse."""

import keras
from keras import layers, ops

from zoo import _checks, networks, replicas, wgan_steps
from zoo.gan import TwoPlayerGAN
from zoo.dcgan import _WIDTHS, default_stages

CRITIC_NORMS = ("layer", "none")


@keras.saving.register_keras_serializable(package="genzoo")
class ExactLayerNormalization(layers.LayerNormalization):
    """`keras.layers.LayerNormalization` whose second derivatives are exact on every backend.

    On TensorFlow, Keras computes the statistics with `tf.nn.moments`, which
    stops the gradient through the mean inside the variance: first derivatives
    are right, second derivatives are not, and the gradient penalty
    differentiates the critic twice (measured: the critic's weight gradients
    differed by up to 10% from JAX's and PyTorch's). Here the moments are
    plain `keras.ops`. Same arguments, weights and outputs as the Keras layer.
    """

    def call(self, inputs):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        x = ops.cast(inputs, "float32") if self.compute_dtype in ("float16", "bfloat16") else inputs
        mean = ops.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        variance = ops.mean(ops.square(centred), axis=axes, keepdims=True)
        outputs = centred * ops.rsqrt(variance + self.epsilon)
        shape = [1] * len(x.shape)
        for axis in axes:
            shape[axis] = x.shape[axis]
        if self.scale:
            outputs = outputs * ops.reshape(ops.cast(self.gamma, outputs.dtype), shape)
        if self.center:
            outputs = outputs + ops.reshape(ops.cast(self.beta, outputs.dtype), shape)
        return ops.cast(outputs, self.compute_dtype)


def critic_network(image_shape, filters=(64, 128), kernel_size=5, norm="layer", name="critic", dtype=None):
    """The WGAN-GP critic: the DCGAN discriminator's strided convolutions and
    LeakyReLU(0.2) without batch norm, which would make each example's score
    depend on the rest of the batch and so invalidate the per-example gradient
    penalty (Gulrajani et al. 2017, section 4): layer norm over (H, W, C) on
    all but the input layer ("layer"), or no normalisation ("none"). One
    unbounded score out (no sigmoid)."""
    images = keras.Input(shape=image_shape, name="images")
    x = images
    for i, width in enumerate(filters):
        x = layers.Conv2D(width, kernel_size, strides=2, padding="same", name=f"conv{i}", dtype=dtype)(x)
        if i > 0 and norm == "layer":
            x = ExactLayerNormalization(axis=(1, 2, 3), name=f"conv{i}_ln", dtype=dtype)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"conv{i}_lrelu", dtype=dtype)(x)
    x = layers.Flatten(name="flatten", dtype=dtype)(x)
    scores = layers.Dense(1, name="score", dtype="float32")(x)
    return keras.Model(images, scores, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="genzoo")
class WGANGP(TwoPlayerGAN):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017; Arjovsky
    et al. 2017).

    The critic f scores images (higher = more real, no sigmoid); it is trained
    `n_critic` times per generator step on E f(G(z)) - E f(x) + lambda *
    E (|grad f(x_hat)| - 1)^2, x_hat a uniform random point between a real and
    a fake image (eps ~ U[0, 1] per example), which keeps f close to
    1-Lipschitz so that E f(x) - E f(G(z)) estimates the Wasserstein-1
    distance; the generator descends -E f(G(z)). The generator is the DCGAN's
    (`zoo.networks.dcgan_generator`); the critic the DCGAN discriminator
    without batch norm (`critic_network`). Images cross the API in [0, 1];
    the tanh range [-1, 1] stays inside, as for the DCGAN.

    Args:
        image_shape: tuple (H, W, C). H and W divisible by 2**stages, C in {1, 3}.
        latent_dim: int. Dimension of z ~ N(0, I). Defaults to 100.
        n_critic: int >= 1. Critic updates per generator update. Defaults to 5.
        gp_weight: float >= 0. lambda, the weight of the gradient penalty.
            Defaults to 10.
        generator_filters: tuple of int or None. As for the DCGAN. Defaults to
            None: (128, 64) for 28x28, (256, 128, 64) for 32x32, ...
        critic_filters: tuple of int or None. Widths of the critic's strided
            convolutions. Defaults to None: the generator's, reversed.
        kernel_size: int. Defaults to 5.
        critic_norm: str. "layer" (layer normalisation) or "none". Defaults to "layer".
        sync_batch_norm: bool. Under a tf.distribute strategy, the generator's
            batch-norm statistics over the global batch (the step then equals
            one device's) instead of per replica. Defaults to False. The
            critic has no batch norm (the penalty is per example).
        seed: int or None. Seeds the training noise and `sample()`.
        dtype: the Keras dtype policy; saved in the config. Defaults to None.

    Tracked: `c_loss` (the critic's objective with the penalty), `gp` (the
    mean penalty (|grad| - 1)^2, before lambda), `w_distance` (E f(x) - E
    f(G(z)), the critic's estimate of the Wasserstein distance), `g_loss`.
    The critic's values are those of the step's last critic update.

    Trains on every Keras backend: the step is written once per backend, in
    `zoo.wgan_steps`. `compile()` gives each player Adam(1e-4, beta_1=0,
    beta_2=0.9), the paper's setting.

    Example:
    >>> wgan = WGANGP((28, 28, 1))
    >>> wgan.compile()
    >>> wgan.fit(images, epochs=20)
    >>> grid = wgan.sample(64, seed=0)
    """

    kind = "wgan-gp"
    default_learning_rate = 1e-4
    adam_options = {"beta_1": 0.0, "beta_2": 0.9}  # Gulrajani et al. (2017)
    judge_name = "critic"  # d_optimizer, d_learning_rate: the critic's
    steps = wgan_steps

    def __init__(
        self,
        image_shape,
        latent_dim=100,
        n_critic=5,
        gp_weight=10.0,
        generator_filters=None,
        critic_filters=None,
        kernel_size=5,
        critic_norm="layer",
        sync_batch_norm=False,
        seed=None,
        **kwargs,
    ):
        stages = default_stages(_checks.image_shape(image_shape, 2))
        if generator_filters is not None:
            generator_filters = _checks.filters("generator_filters", generator_filters)
            stages = len(generator_filters)
        if critic_filters is not None:
            critic_filters = _checks.filters("critic_filters", critic_filters)
            stages = max(stages, len(critic_filters))
        super().__init__(image_shape, latent_dim, downsamplings=stages, seed=seed, **kwargs)
        self.n_critic = _checks.positive_int("n_critic", n_critic)
        self.gp_weight = _checks.non_negative_float("gp_weight", gp_weight)
        self.generator_filters = generator_filters
        self.critic_filters = critic_filters
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.critic_norm = _checks.choice("critic_norm", critic_norm, CRITIC_NORMS)
        g_widths = generator_filters or _WIDTHS[:stages][::-1]
        c_widths = critic_filters or g_widths[::-1]
        policy = self.dtype_policy
        self.sync_batch_norm = bool(sync_batch_norm)
        synced = self.sync_batch_norm and keras.backend.backend() == "tensorflow"  # JAX's statistics are global
        self.generator = networks.dcgan_generator(self.image_shape, self.latent_dim, g_widths, self.kernel_size,
                                                  dtype=policy, synchronized=synced)
        self.critic = critic_network(self.image_shape, c_widths, self.kernel_size, self.critic_norm, dtype=policy)
        self._noise_seed = keras.random.SeedGenerator(self._sub_seed(1))
        self._add_trackers("c_loss", "gp", "w_distance", "g_loss")
        self.built = True

    # -- the public edge: [0, 1] images (generate, call: TwoPlayerGAN) ----------
    def score(self, images):
        """The critic's score f(x) of each image in [0, 1] (higher: judged more real)."""
        return self.critic(2.0 * self._images(images, "WGANGP.score") - 1.0, training=False)[:, 0]

    # -- training: one step per backend, in zoo.wgan_steps (dispatched by TwoPlayerGAN) --
    def _noise(self, batch_size):
        return replicas.normal((batch_size, self.latent_dim), seed=self._noise_seed)

    def _interpolation_weights(self, batch_size):
        """eps ~ U[0, 1], one per example, shaped (batch, 1, 1, 1) to mix whole images."""
        return replicas.uniform((batch_size, 1, 1, 1), minval=0.0, maxval=1.0, seed=self._noise_seed)


def default_optimizer():
    """Adam(1e-4, beta_1=0, beta_2=0.9), the setting of Gulrajani et al. (2017)."""
    return WGANGP.default_optimizer()


__all__ = ["ExactLayerNormalization", "WGANGP", "critic_network", "default_optimizer"]
