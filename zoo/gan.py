"""What the zoo's GANs share (`zoo.DCGAN`, `zoo.WGANGP`): two players, each with its own
optimizer, a generator with a tanh output behind a [0, 1] public edge, and one training
step per backend in the family's steps module."""

import keras

from zoo import _checks, gan_steps
from zoo.base import GenerativeModel


class TwoPlayerGAN(GenerativeModel):
    """Base of the GANs; not used directly.

    Subclasses build `self.generator` (tanh output, images in [-1, 1]) and the
    network that judges images, named by `judge_name` ("discriminator",
    "critic"); they set `default_learning_rate` and `adam_options` (the
    players' Adam settings besides the rate) and `steps`, the module with
    their step per backend (`train_step`, `jax_train_step`, `evaluate_terms`).
    """

    judge_name = "discriminator"
    adam_options = {}
    steps = None
    player_learning_rates = ("d_learning_rate", "g_learning_rate")  # d: the judge's

    @classmethod
    def default_optimizer(cls):
        """Adam with the family's rate and settings (each player gets its own)."""
        return keras.optimizers.Adam(learning_rate=cls.default_learning_rate, **cls.adam_options)

    # -- compile / saving of the two optimizers ---------------------------------
    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Give each player its own optimizer: `d_optimizer` the judge's (discriminator or critic),
        `g_optimizer` the generator's (default `default_optimizer()` each)."""
        if "optimizer" in kwargs:
            raise ValueError(f"{type(self).__name__}.compile takes d_optimizer= (the {self.judge_name}'s) and "
                             "g_optimizer= (the generator's), one per player, not optimizer=.")
        self.d_optimizer = keras.optimizers.get(d_optimizer) if d_optimizer is not None else self.default_optimizer()
        self.g_optimizer = keras.optimizers.get(g_optimizer) if g_optimizer is not None else self.default_optimizer()
        super().compile(optimizer=None, **kwargs)
        # Build both now so a reloaded model can restore their slots before training.
        self.d_optimizer.build(getattr(self, self.judge_name).trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        # Keras' JAX trainer threads `self.optimizer.variables` through its
        # stateless step; `Players` lists both optimizers' state there.
        self.optimizer = gan_steps.Players(self.d_optimizer, self.g_optimizer)

    @property
    def optimizers(self):
        return [o for o in (getattr(self, "d_optimizer", None), getattr(self, "g_optimizer", None)) if o is not None]

    def compile_default(self, learning_rate=None, d_learning_rate=None, g_learning_rate=None):
        """The family's Adam per player; `learning_rate` (default `default_learning_rate`) for both unless
        given per player."""
        def rate(name, value, default):
            return default if value is None else _checks.positive_float(name, value)

        lr = rate("learning_rate", learning_rate, self.default_learning_rate)
        self.compile(
            d_optimizer=keras.optimizers.Adam(rate("d_learning_rate", d_learning_rate, lr), **self.adam_options),
            g_optimizer=keras.optimizers.Adam(rate("g_learning_rate", g_learning_rate, lr), **self.adam_options),
        )
        return self

    def get_compile_config(self):
        if not getattr(self, "compiled", False) or not hasattr(self, "d_optimizer"):
            return {}
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
        }

    def compile_from_config(self, config):
        if not config:
            return
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
        )

    # -- the public edge: [0, 1] images ----------------------------------------
    def generate(self, z, labels=None):
        """Latents (batch, latent_dim) -> images in [0, 1] (a conditional model: of class `labels`)."""
        where = f"{type(self).__name__}.generate"
        z = self._latents(z, where)
        images = self.generator(self._code_input(z, self._one_hot(labels, z.shape[0], where)), training=False)
        return 0.5 * (images + 1.0)

    def call(self, z, training=None, labels=None):
        where = f"{type(self).__name__}.call"
        z = self._latents(z, where)
        condition = self._one_hot(labels, z.shape[0], where)
        return 0.5 * (self.generator(self._code_input(z, condition), training=training) + 1.0)

    # -- training: one step per backend, in the family's steps module ------------
    def _real(self, data, where):
        return 2.0 * self._images(data, where) - 1.0

    if keras.backend.backend() == "jax":

        def train_step(self, state, data):
            return self.steps.jax_train_step(self, state, data)

        def test_step(self, state, data):
            return gan_steps.jax_test_step(self, state, data, self.steps.evaluate_terms)

    else:

        def train_step(self, data):
            return self.steps.train_step(self, data)

        def test_step(self, data):
            where = f"{type(self).__name__}.evaluate"
            real = self._real(data, where)
            return self._update_trackers(**self.steps.evaluate_terms(self, real, self._condition(data, where)))
