"""GAN inversion: the latent z whose image G(z) best reconstructs a given image.

A VAE or an autoencoder maps an image to its code in one encoder pass. A GAN
has no encoder: "given an x, it is difficult to find z" -- the only way is to
search, here by gradient descent on z with the generator frozen
(Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image
Manifold"; Creswell & Bharath 2018, "Inverting the Generator of a GAN"):

    z* = argmin_z  mean_pixels (G(z) - x)^2  +  prior_weight * mean_j z_j^2

minimised by Adam on z, each image its own z (the objective is a sum over the
batch, so one image's gradient does not depend on the others'). The prior
term, -log N(z; 0, I) up to constants and scale, keeps z where the generator
was trained; 0 turns it off.

The search runs on every Keras backend: the Adam update is written once in
`keras.ops`, and only the gradient of the objective with respect to z is
written per backend (a TensorFlow tape, `jax.value_and_grad`,
`torch.autograd.grad`), side by side below, as in `zoo.dcgan_steps`.
Any `GenerativeModel` can be inverted through its `generate` (the DCGAN's
generator, the AE/VAE decoder); models with an encoder can start from its code.
"""

import collections
import weakref

import keras
import numpy as np
from keras import ops

from zoo import _checks

Inversion = collections.namedtuple("Inversion", ["z", "error"])
Inversion.__doc__ = """What `invert` found.

    z: float32 array (n, latent_dim). The latents found.
    error: float32 array (n,). Per-image mean squared error between
        `model.generate(z)` and the image, pixels in [0, 1].
"""

INITS = ("normal", "encoder")


def reconstruction_error(model, z, images):
    """Per-image mean squared error between `model.generate(z)` and `images` (numpy, float32)."""
    generated = ops.convert_to_numpy(model.generate(np.asarray(z, np.float32)))
    return np.mean(np.square(generated - np.asarray(images, np.float32)), axis=(1, 2, 3)).astype(np.float32)


def _objective(model, prior_weight):
    """(z, target) -> (per-image reconstruction error, per-image objective), keras.ops only."""

    def objective(z, target):
        images = model.generate(z)
        error = ops.mean(ops.square(images - target), axis=(1, 2, 3))
        if prior_weight:
            return error, error + prior_weight * ops.mean(ops.square(z), axis=-1)
        return error, error

    return objective


# -- the gradient with respect to z, once per backend -----------------------------
# Each returns step(z, m, v, t, target) -> (error before the step, z, m, v): one Adam step.
def _adam(z, grad, m, v, t, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """One Adam step (Kingma & Ba 2015) on z, in keras.ops; `t` counts from 1."""
    m = beta_1 * m + (1.0 - beta_1) * grad
    v = beta_2 * v + (1.0 - beta_2) * ops.square(grad)
    m_hat = m / (1.0 - ops.power(beta_1, t))
    v_hat = v / (1.0 - ops.power(beta_2, t))
    return z - learning_rate * m_hat / (ops.sqrt(v_hat) + epsilon), m, v


def tensorflow_step(objective, learning_rate):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(z, m, v, t, target):
        with tf.GradientTape() as tape:
            tape.watch(z)
            error, total = objective(z, target)
            total = ops.sum(total)
        z, m, v = _adam(z, tape.gradient(total, z), m, v, t, learning_rate)
        return error, z, m, v

    return step


def jax_step(objective, learning_rate):
    import jax

    def summed(z, target):
        error, total = objective(z, target)
        return ops.sum(total), error

    # The generator's weights are read inside the trace, so they enter as constants:
    # frozen, as the search requires (no variable is written: generate runs in inference mode).
    @jax.jit
    def step(z, m, v, t, target):
        (_, error), grad = jax.value_and_grad(summed, has_aux=True)(z, target)
        z, m, v = _adam(z, grad, m, v, t, learning_rate)
        return error, z, m, v

    return step


def torch_step(objective, learning_rate):
    import torch

    def step(z, m, v, t, target):
        z = z.detach().requires_grad_(True)
        error, total = objective(z, target)
        # autograd.grad, not backward(): only z's gradient, nothing accumulates in the generator's weights.
        (grad,) = torch.autograd.grad(ops.sum(total), [z])
        with torch.no_grad():
            z, m, v = _adam(z.detach(), grad, m, v, t, learning_rate)
        return error.detach(), z, m, v

    return step


_STEPS = {"tensorflow": tensorflow_step, "jax": jax_step, "torch": torch_step}


# model -> {(learning_rate, prior_weight): step}: a second `invert` on the same model reuses the
# traced TensorFlow function or the compiled JAX one (the weights enter JAX's trace as constants, so
# the cache is dropped when any weight changes).
_CACHE = weakref.WeakKeyDictionary()


def _step_function(model, learning_rate, prior_weight):
    backend = keras.backend.backend()
    if backend not in _STEPS:
        raise RuntimeError(
            f"invert has gradient code for the tensorflow, jax and torch backends of Keras, not {backend!r}."
        )
    # JAX arrays are immutable: a weight that changed is a different array object.
    weights = tuple(w.value for w in model.weights) if backend == "jax" else ()
    cached = _CACHE.setdefault(model, {})
    key = (learning_rate, prior_weight)
    if key not in cached or len(cached[key][0]) != len(weights) or any(a is not b for a, b in zip(cached[key][0], weights)):
        cached[key] = (weights, _STEPS[backend](_objective(model, prior_weight), learning_rate))
    return cached[key][1]


# -- the public function ------------------------------------------------------------
def _images(model, images):
    images = _checks.training_images(images, "invert")
    images = np.asarray(ops.convert_to_numpy(images) if not isinstance(images, np.ndarray) else images)
    _checks.batch_images(images, model.image_shape, "invert")
    if len(images) == 0:
        raise ValueError("invert: no images given (the batch is empty).")
    return images.astype(np.float32)


def _initial(model, images, init, seed):
    n = len(images)
    if init is None or (isinstance(init, str) and init == "normal"):
        return np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32)
    if isinstance(init, str):
        _checks.choice("init", init, INITS)
        if not model.has_encoder:
            raise ValueError(
                f"invert: init='encoder' needs a model with an encoder; {type(model).__name__} has none "
                "(has_encoder is False). Use init=None (z ~ N(0, I)) or pass starting latents as an array."
            )
        return np.asarray(ops.convert_to_numpy(model.embed(images)), np.float32)
    z = np.asarray(ops.convert_to_numpy(init) if not isinstance(init, np.ndarray) else init, np.float32)
    if z.shape != (n, model.latent_dim):
        raise ValueError(f"invert: init has shape {z.shape}; expected (n images, latent_dim) = {(n, model.latent_dim)}.")
    if not np.isfinite(z).all():
        raise ValueError("invert: init holds NaN or infinite values.")
    return z


def invert(model, images, steps=200, learning_rate=0.05, init=None, prior_weight=0.0, batch_size=256, seed=0):
    """Find latents z whose `model.generate(z)` reconstructs `images`, by Adam on z.

    The model's weights are not touched (the generator runs in inference mode
    and only z receives gradients).

    Args:
        model: a `zoo.GenerativeModel` (anything with `generate`, `latent_dim`,
            `image_shape`).
        images: float array (n, H, W, C) in [0, 1], the model's image shape.
        steps: int. Adam steps per image. Defaults to 200. 0 returns the start.
        learning_rate: float. Adam's step size on z. Defaults to 0.05.
        init: None or "normal" (z ~ N(0, I) drawn with `seed`), "encoder"
            (the model's own code, `model.embed(images)`; needs `has_encoder`)
            or an array (n, latent_dim). Defaults to None.
        prior_weight: float >= 0. Weight of the prior term mean(z**2).
            Defaults to 0.
        batch_size: int. Images searched together (each has its own z).
            Defaults to 256.
        seed: int or None. Seed of the random start. Defaults to 0.

    Returns:
        `Inversion(z, error)`: z (n, latent_dim) and the per-image mean
        squared error of `generate(z)` (pixels in [0, 1]), both numpy float32.

    Example:
    >>> z, error = gan.invert(test_images[:16], steps=500)
    >>> edited = gan.generate(z + direction)
    """
    steps = _checks.non_negative_int("steps", steps)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    prior_weight = _checks.non_negative_float("prior_weight", prior_weight)
    batch_size = _checks.positive_int("batch_size", batch_size)
    images = _images(model, images)
    z_all = _initial(model, images, init, seed)
    step = _step_function(model, learning_rate, prior_weight) if steps else None
    found = []
    for start in range(0, len(images), batch_size):
        target = ops.convert_to_tensor(images[start : start + batch_size])
        z = ops.convert_to_tensor(z_all[start : start + batch_size])
        if steps:
            m, v = ops.zeros_like(z), ops.zeros_like(z)
            for t in range(1, steps + 1):
                _, z, m, v = step(z, m, v, ops.convert_to_tensor(float(t)), target)
        found.append(ops.convert_to_numpy(z).astype(np.float32))
    z = np.concatenate(found)
    return Inversion(z, reconstruction_error(model, z, images))


__all__ = ["Inversion", "invert", "reconstruction_error"]
