"""What a model's training state is, for the callbacks and the training loop: its optimizers,
their learning rates and step counts, its sampling-noise states, and whether it is all finite."""

import keras
import numpy as np


def optimizers(model):
    """{learning-rate log name: optimizer} of every optimizer `model` owns.

    A single-optimizer model gives {"learning_rate": model.optimizer}; the
    DCGAN, whose `model.optimizer` is None, {"d_learning_rate": d_optimizer,
    "g_learning_rate": g_optimizer}.
    """
    found = {}
    if isinstance(getattr(model, "optimizer", None), keras.optimizers.Optimizer):
        found["learning_rate"] = model.optimizer
    for attr, value in sorted(vars(model).items()):
        if attr != "optimizer" and not attr.startswith("_") and isinstance(value, keras.optimizers.Optimizer):
            found[attr.replace("optimizer", "learning_rate")] = value
    return found


def learning_rates(model):
    """{name: current learning rate (float)} of every optimizer of `model`, schedules evaluated."""
    rates = {}
    for name, opt in optimizers(model).items():
        opt = getattr(opt, "inner_optimizer", opt)
        rates[name] = float(keras.ops.convert_to_numpy(opt.learning_rate))
    return rates


def steps_done(model):
    """Training steps taken so far: the largest `iterations` of the model's optimizers (0 if none)."""
    counts = [int(keras.ops.convert_to_numpy(opt.iterations)) for opt in optimizers(model).values()]
    return max(counts, default=0)


def weights_are_finite(model):
    """Whether every weight of `model` (optimizer state included) is finite."""
    variables = list(model.weights) + [v for opt in optimizers(model).values() for v in opt.variables]
    for v in variables:
        value = keras.ops.convert_to_numpy(v)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            return False
    return True


def _seed_states(model):
    """The state variables of every `keras.random.SeedGenerator` in `model` (not part of its weights)."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]
