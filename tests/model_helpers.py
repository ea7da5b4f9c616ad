"""Shared checks in the keras-hub manner: each model test is its init kwargs plus a few calls."""

import keras
import numpy as np


def deterministic_output(model, z):
    """The model's deterministic generative path on fixed latents."""
    return keras.ops.convert_to_numpy(model.generate(z))


def gradient(fn, x):
    """d sum(fn(x)) / dx as numpy, with the running backend's autodiff."""
    backend = keras.backend.backend()
    x = np.asarray(x, "float32")
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(fn(x))
        return tape.gradient(total, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v).sum())(x))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        fn(x).sum().backward()
        return x.grad.numpy()
    raise NotImplementedError(f"no autodiff helper for the {backend!r} backend")


def fixed_latents(model, n=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype("float32")


def run_serialization_test(cls, init_kwargs):
    """from_config(get_config()) rebuilds the same architecture and hyperparameters."""
    model = cls(**init_kwargs)
    config = model.get_config()
    for key, value in init_kwargs.items():
        expected = tuple(value) if isinstance(value, list) else value
        assert config[key] == expected, key
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    # And through JSON, as in a .keras file.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(restored) is cls and restored.get_config() == config


def run_saving_test(model, tmp_path):
    """.keras save -> load_model gives identical outputs on the deterministic path."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is type(model)
    z = fixed_latents(model)
    np.testing.assert_array_equal(deterministic_output(reloaded, z), deterministic_output(model, z))
    return reloaded


def run_fit_test(model, images, epochs, batch_size=64, labels=None):
    """fit() runs for `epochs` and returns the history of every tracker."""
    history = model.fit(images, labels, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    assert set(history.history) == {m.name for m in model.metrics}
    for name, values in history.history.items():
        assert len(values) == epochs and np.all(np.isfinite(values)), (name, values)
    return history.history
