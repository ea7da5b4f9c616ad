"""zoo.inversion: GAN inversion by Adam on z, on every backend (tests/test_backend_matrix.py reruns this file)."""

import keras
import numpy as np
import pytest

import zoo
from zoo.inversion import reconstruction_error

LATENT = 8


def _generator(seed=0):
    """A tiny DCGAN whose random generator makes distinct images: its kernels are scaled up so
    the untrained outputs spread over [0, 1] instead of sitting at 0.5 (distant latents, distant images)."""
    keras.utils.set_random_seed(seed)  # the initial weights, whatever ran before
    gan = zoo.DCGAN((8, 8, 1), latent_dim=LATENT, generator_filters=(16, 8), kernel_size=3, seed=seed)
    for w in gan.generator.weights:
        if w.path.endswith("kernel"):
            w.assign(w * 2.0)
    return gan


def _targets(gan, n=6, seed=1):
    z = np.random.default_rng(seed).standard_normal((n, LATENT)).astype("float32")
    return z, keras.ops.convert_to_numpy(gan.generate(z))


def test_inverting_generated_images_recovers_them():
    gan = _generator()
    z_true, images = _targets(gan)
    # From a start 0.5 sigma off in each coordinate (a random start can end in a local minimum:
    # that is why inversion is "difficult"; benchmarks/inversion.py measures it on MNIST).
    start = z_true + 0.5 * np.random.default_rng(5).standard_normal(z_true.shape).astype("float32")
    before = reconstruction_error(gan, start, images)
    assert before.min() > 1e-3  # the start's images are visibly off
    weights = [keras.ops.convert_to_numpy(w) for w in gan.weights]
    z, error = gan.invert(images, steps=150, learning_rate=0.05, init=start, batch_size=4)  # two batches
    assert z.shape == (len(images), LATENT) and error.shape == (len(images),)
    assert error.max() < 1e-6, error
    assert np.all(error < before / 1000), (before, error)
    # The error reported is the error of the z returned.
    np.testing.assert_allclose(error, reconstruction_error(gan, z, images), rtol=1e-5, atol=1e-9)
    # The generator stayed frozen: no weight (batch-norm statistics included) moved.
    for w, w0 in zip(gan.weights, weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), w0)


def test_fewer_steps_leave_a_larger_error_and_zero_steps_returns_the_start():
    gan = _generator()
    _, images = _targets(gan, n=4)
    z0, e0 = gan.invert(images, steps=0, seed=3)
    np.testing.assert_array_equal(z0, np.random.default_rng(3).standard_normal((4, LATENT)).astype("float32"))
    _, e10 = gan.invert(images, steps=10, seed=3)
    _, e60 = gan.invert(images, steps=60, seed=3)
    assert e60.mean() < e10.mean() < e0.mean()


def test_the_prior_term_pulls_z_towards_the_origin():
    gan = _generator()
    _, images = _targets(gan, n=4)
    free, _ = gan.invert(images, steps=60, seed=3)
    pulled, _ = gan.invert(images, steps=60, seed=3, prior_weight=1.0)
    assert np.linalg.norm(pulled, axis=1).mean() < np.linalg.norm(free, axis=1).mean()


def test_encoder_start_uses_the_models_own_code():
    vae = zoo.VAE((8, 8, 1), latent_dim=4, filters=(8, 16), hidden_dim=16, seed=0)
    images = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype("float32")
    z, error = vae.invert(images, steps=0, init="encoder")
    np.testing.assert_allclose(z, keras.ops.convert_to_numpy(vae.embed(images)), rtol=1e-6, atol=1e-6)
    _, better = vae.invert(images, steps=30, init="encoder")
    assert better.mean() < error.mean()


def test_bad_input_gives_one_clear_error():
    gan = _generator()
    good = np.full((2, 8, 8, 1), 0.5, "float32")
    with pytest.raises(ValueError, match="needs a model with an encoder"):
        gan.invert(good, init="encoder")
    with pytest.raises(ValueError, match=r"image_shape=\(8, 8, 1\)"):
        gan.invert(np.zeros((2, 16, 16, 1), "float32"))
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        gan.invert(good * 255)
    with pytest.raises(ValueError, match="init has shape"):
        gan.invert(good, init=np.zeros((3, LATENT), "float32"))
    with pytest.raises(ValueError, match="steps"):
        gan.invert(good, steps=-1)
    with pytest.raises(ValueError, match="init="):
        gan.invert(good, init="uniform")


def test_a_changed_generator_is_inverted_as_it_is_now():
    """The compiled search is reused between calls, but never with stale weights."""
    gan = _generator()
    _, images = _targets(gan, n=3)
    z, _ = gan.invert(images, steps=5, seed=3)
    for w in gan.generator.weights:
        if w.path.endswith("kernel"):
            w.assign(w * 0.5)
    z2, error = gan.invert(images, steps=5, seed=3)
    assert not np.allclose(z, z2)
    np.testing.assert_allclose(error, reconstruction_error(gan, z2, images), rtol=1e-5, atol=1e-9)
