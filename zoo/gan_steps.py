"""What the GANs' training steps share (`zoo.dcgan_steps`, `zoo.wgan_steps`): the two
optimizers as one `model.optimizer`, and the plumbing of a stateless JAX step."""

import keras


class Players:
    """The two players' optimizers as one `model.optimizer` for Keras' trainers.

    Keras' JAX trainer carries `model.optimizer.variables` through its
    stateless step; this lists the discriminator's (or critic's) and then the
    generator's.
    `iterations` is the generator's (one per training step). `optimizers`
    lets Keras' LearningRateScheduler and ReduceLROnPlateau set both players'
    rates, as for a `keras.optimizers.MultiOptimizer`."""

    def __init__(self, d_optimizer, g_optimizer):
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def optimizers(self):
        return [self.d_optimizer, self.g_optimizer]

    @property
    def variables(self):
        return list(self.d_optimizer.variables) + list(self.g_optimizer.variables)

    @property
    def built(self):
        return self.d_optimizer.built and self.g_optimizer.built

    def build(self, variables=None):
        """Both players are built by the model's `compile`; nothing to do."""

    @property
    def iterations(self):
        return self.g_optimizer.iterations

    def scale_loss(self, loss):
        return loss


# -- JAX (stateless) -----------------------------------------------------------
class State:
    """Picks a network's share out of the model's flat state lists, and puts it back."""

    def __init__(self, model_variables, values):
        self._index = {id(v): i for i, v in enumerate(model_variables)}
        self.values = list(values)

    def take(self, variables):
        return [self.values[self._index[id(v)]] for v in variables]

    def put(self, variables, values):
        for v, value in zip(variables, values):
            self.values[self._index[id(v)]] = value


def jax_draw(model, nt, draw):
    """`draw()` (the step's noise) in a stateless scope over the non-trainable values `nt` (a `State`),
    whose model seed state it advances."""
    with keras.StatelessScope(state_mapping=list(zip(model.non_trainable_variables, nt.values))) as scope:
        drawn = draw()
    seed_state = model._noise_seed.state
    nt.put([seed_state], [scope.get_current_value(seed_state)])
    return drawn


def jax_update_trackers(model, metrics_values, values):
    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_values))) as scope:
        logs = model._update_trackers(**values)
    return logs, [scope.get_current_value(v) for v in model.metrics_variables]


def jax_test_step(model, state, data, evaluate_terms):
    """Keras' stateless JAX test step: `evaluate_terms(model, real, condition)` on the batch, trackers updated."""
    trainable, non_trainable, metrics_values = state
    where = f"{type(model).__name__}.evaluate"
    real, condition = model._real(data, where), model._condition(data, where)
    mapping = list(zip(model.trainable_variables, trainable)) + list(zip(model.non_trainable_variables, non_trainable))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        values = evaluate_terms(model, real, condition)
    non_trainable = [scope.get_current_value(v) for v in model.non_trainable_variables]
    logs, metrics_values = jax_update_trackers(model, metrics_values, values)
    return logs, (trainable, non_trainable, metrics_values)
