"""One backend's side of tests/test_backends.py, run as a subprocess:

    KERAS_BACKEND=jax python -m tests.backend_worker step WORKDIR MODEL [MODEL ...]
    KERAS_BACKEND=torch python -m tests.backend_worker load WORKDIR

`step` builds each MODEL from fixed hyperparameters, loads the initial weights in
WORKDIR/initial-MODEL.weights.h5 (written by the first backend to get there,
so every backend starts from the same weights), takes one `fit` step on a
fixed batch and writes WORKDIR/<backend>-MODEL.npz (the logged losses and
every weight after the step) and WORKDIR/<backend>-MODEL.keras.

`load` loads every WORKDIR/*.keras (written on any backend) and writes
WORKDIR/<backend>-loads-<file>.npy: its images for fixed latents.

The random draws of a training step (the VAE's eps, the DCGAN's z, the WGAN-GP's
z and interpolation weights) come from `keras.random.normal` and `keras.random.uniform`, whose numbers differ between backends by design; here
it is replaced by a fixed pattern computed with keras.ops, so that the step
is the same computation on every backend.
"""

import glob
import os
import sys

import keras
import numpy as np
from keras import ops

import zoo

BATCH = 16
KWARGS = {
    "ae": {"image_shape": (8, 8, 1), "latent_dim": 4, "filters": (8, 16), "hidden_dim": 32},
    "vae": {"image_shape": (8, 8, 1), "latent_dim": 4, "filters": (8, 16), "hidden_dim": 32},
    "dcgan": {"image_shape": (8, 8, 1), "latent_dim": 8, "generator_filters": (32, 16), "kernel_size": 3},
    "wgan-gp": {"image_shape": (8, 8, 1), "latent_dim": 8, "generator_filters": (16, 8), "kernel_size": 3, "n_critic": 2},
    # Conditional: the labels reach the encoder, decoder and both players.
    "cvae": {"image_shape": (8, 8, 1), "latent_dim": 4, "filters": (8, 16), "hidden_dim": 32, "num_classes": 3},
    "cdcgan": {"image_shape": (8, 8, 1), "latent_dim": 8, "generator_filters": (32, 16), "kernel_size": 3,
               "num_classes": 3},
}
CLASSES = {"ae": zoo.Autoencoder, "vae": zoo.VAE, "dcgan": zoo.DCGAN, "wgan-gp": zoo.WGANGP, "cvae": zoo.VAE,
           "cdcgan": zoo.DCGAN}


def fixed_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """A deterministic stand-in for keras.random.normal: a spread of values in about [-1.7, 1.7]."""
    ones = ops.ones(shape, dtype="float32")
    index = ops.reshape(ops.cumsum(ops.reshape(ones, (-1,))), ops.shape(ones))
    values = 1.7 * ops.sin(0.61 * index + 0.3)
    return ops.cast(values * stddev + mean, dtype or "float32")


def fixed_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """A deterministic stand-in for keras.random.uniform (the WGAN-GP's eps): values in (minval, maxval)."""
    ones = ops.ones(shape, dtype="float32")
    index = ops.reshape(ops.cumsum(ops.reshape(ones, (-1,))), ops.shape(ones))
    values = 0.5 + 0.45 * ops.sin(1.37 * index + 0.1)
    return ops.cast(minval + (maxval - minval) * values, dtype or "float32")


def batch():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(BATCH, 8, 8, 1)).astype("float32")


def latents(latent_dim):
    return np.random.default_rng(1).standard_normal((5, latent_dim)).astype("float32")


def labels(num_classes, n):
    return (np.arange(n) % num_classes).astype("int32")


def images_of(model):
    """The model's images for the fixed latents (a conditional model: of classes 0, 1, 2, 0, 1)."""
    z = latents(model.latent_dim)
    return ops.convert_to_numpy(model.generate(z) if model.num_classes is None else
                                model.generate(z, labels(model.num_classes, len(z))))


def step(name, workdir):
    backend = keras.backend.backend()
    cls = CLASSES[name]
    keras.utils.set_random_seed(0)  # the same initial weights in every run (TensorFlow's are the ones used)
    model = cls(seed=0, **KWARGS[name])
    initial = os.path.join(workdir, f"initial-{name}.weights.h5")
    if not os.path.exists(initial):
        tmp = os.path.join(workdir, f".{backend}-initial-{name}.weights.h5")
        model.save_weights(tmp)
        os.replace(tmp, initial)
    model.load_weights(initial)
    model.compile_default()
    real_normal, keras.random.normal = keras.random.normal, fixed_normal
    real_uniform, keras.random.uniform = keras.random.uniform, fixed_uniform
    try:
        y = None if model.num_classes is None else labels(model.num_classes, BATCH)
        history = model.fit(batch(), y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
    finally:
        keras.random.normal, keras.random.uniform = real_normal, real_uniform
    arrays = {f"loss:{k}": np.asarray(v[-1], np.float64) for k, v in history.items()}
    initial_weights = cls(seed=0, **KWARGS[name])
    initial_weights.load_weights(initial)
    arrays["moved"] = np.asarray(max(
        float(np.max(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b))))
        for a, b in zip(model.trainable_weights, initial_weights.trainable_weights)
    ))
    for i, w in enumerate(model.weights):
        arrays[f"weight:{i}:{w.path}"] = keras.ops.convert_to_numpy(w)
    np.savez(os.path.join(workdir, f"{backend}-{name}.npz"), **arrays)
    model.save(os.path.join(workdir, f"{backend}-{name}.keras"))
    np.save(os.path.join(workdir, f"{backend}-{name}-own.npy"), images_of(model))


def load(workdir):
    backend = keras.backend.backend()
    for path in sorted(glob.glob(os.path.join(workdir, "*.keras"))):
        model = keras.saving.load_model(path)
        images = images_of(model)
        np.save(os.path.join(workdir, f"{backend}-loads-{os.path.basename(path)}.npy"), images)


if __name__ == "__main__":
    command, workdir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "step":
        for name in names:
            step(name, workdir)
    else:
        load(workdir)
