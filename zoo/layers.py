"""Small reusable layers of the zoo."""

import keras
from keras import ops

from zoo import replicas


@keras.saving.register_keras_serializable(package="genzoo")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: z = mean + exp(log_var / 2) * eps, eps ~ N(0, I).

    Gradients flow to `mean` and `log_var` because the randomness enters only
    through `eps` (Kingma & Welling 2014, section 2.4).

    Args:
        seed: int or None. Seed of the layer's own `keras.random.SeedGenerator`.
            Defaults to None.

    Example:
    >>> z = Sampling(seed=0)([ops.zeros((2, 3)), ops.zeros((2, 3))])
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        eps = replicas.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
