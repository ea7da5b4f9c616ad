import math

import numpy as np
import pytest
from keras import ops

from tests.model_helpers import gradient
from zoo import losses


def np_(x):
    return ops.convert_to_numpy(x)


def test_gaussian_kl_is_zero_for_the_prior():
    kl = np_(losses.gaussian_kl(np.zeros((3, 5), "float32"), np.zeros((3, 5), "float32")))
    np.testing.assert_array_equal(kl, np.zeros(3))


def test_gaussian_kl_matches_numpy_closed_form():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 6)).astype("float32")
    log_var = rng.normal(size=(4, 6)).astype("float32")
    var = np.exp(log_var.astype(np.float64))
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2, summed over dimensions.
    expected = np.sum(-0.5 * np.log(var) + 0.5 * (var + mean.astype(np.float64) ** 2) - 0.5, axis=1)
    np.testing.assert_allclose(np_(losses.gaussian_kl(mean, log_var)), expected, rtol=1e-5)


def test_gaussian_kl_matches_monte_carlo():
    rng = np.random.default_rng(1)
    mean, log_var = np.array([[0.7, -1.2]], "float32"), np.array([[-0.5, 0.8]], "float32")
    std = np.exp(0.5 * log_var[0].astype(np.float64))
    z = mean[0] + std * rng.standard_normal((400_000, 2))
    log_q = np.sum(-0.5 * np.log(2 * np.pi) - np.log(std) - 0.5 * ((z - mean[0]) / std) ** 2, axis=1)
    log_p = np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * z**2, axis=1)
    monte_carlo = np.mean(log_q - log_p)
    assert np_(losses.gaussian_kl(mean, log_var))[0] == pytest.approx(monte_carlo, abs=0.01)


def test_bernoulli_log_likelihood_matches_numpy_and_stays_finite():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(3, 4, 4, 1)).astype("float32")
    logits = rng.normal(scale=3.0, size=(3, 4, 4, 1)).astype("float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(np_(losses.bernoulli_log_likelihood(x, logits)), expected, rtol=1e-5)
    # Saturated logits: log(sigmoid(l)) would give -inf; the stable form gives -|l|.
    extreme = np_(losses.bernoulli_log_likelihood(np.array([[1.0, 0.0]], "float32"), np.array([[-200.0, 200.0]], "float32")))
    assert extreme[0] == pytest.approx(-400.0)


def test_gaussian_log_likelihood_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(2, 3, 3, 3)).astype("float32")
    mean = rng.uniform(size=(2, 3, 3, 3)).astype("float32")
    log_var = np.float32(-1.3)
    var = math.exp(log_var)
    expected = np.sum(-0.5 * np.log(2 * np.pi * var) - (x - mean) ** 2 / (2 * var), axis=(1, 2, 3))
    np.testing.assert_allclose(np_(losses.gaussian_log_likelihood(x, mean, log_var)), expected, rtol=1e-5)


def test_discriminator_loss_matches_numpy():
    real = np.array([[2.0], [-1.0]], "float32")
    fake = np.array([[0.5], [-3.0]], "float32")
    sig = lambda l: 1 / (1 + np.exp(-l.astype(np.float64)))  # noqa: E731
    expected = -np.log(sig(real[:, 0])) - np.log(1 - sig(fake[:, 0]))
    np.testing.assert_allclose(np_(losses.discriminator_loss(real, fake)), expected, rtol=1e-6)


def test_optimal_discriminator_is_pd_over_pd_plus_pg():
    """Goodfellow et al. (2014), Prop. 1: D*(x) = p_d(x) / (p_d(x) + p_g(x))."""
    p_data = np.array([0.5, 0.3, 0.15, 0.05])
    p_model = np.array([0.1, 0.2, 0.3, 0.4])
    grid = np.linspace(-6, 6, 4801, dtype="float32")[:, None]
    never = np.full_like(grid, 1e4)  # a logit whose loss term is 0
    loss_if_real = np_(losses.discriminator_loss(grid, -never))  # -log D
    loss_if_fake = np_(losses.discriminator_loss(never, grid))  # -log(1 - D)
    for pd, pg in zip(p_data, p_model):
        best_logit = grid[np.argmin(pd * loss_if_real + pg * loss_if_fake), 0]
        assert 1 / (1 + np.exp(-best_logit)) == pytest.approx(pd / (pd + pg), abs=2e-3)


def test_generator_losses_match_numpy_and_saturation():
    logits = np.array([[-8.0], [0.0], [3.0]], "float32")
    d = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64)))
    np.testing.assert_allclose(np_(losses.generator_loss(logits, "minimax")), np.log(1 - d), rtol=1e-5)
    np.testing.assert_allclose(np_(losses.generator_loss(logits, "non_saturating")), -np.log(d), rtol=1e-5)
    # Where D confidently rejects the fake (logit -8), minimax's gradient vanishes and the
    # non-saturating one does not: d/dl log(1 - D) = -D, d/dl -log D = -(1 - D).
    for mode, expected in (("minimax", -d[0]), ("non_saturating", -(1 - d[0]))):
        grad = gradient(lambda logit: losses.generator_loss(logit, mode), [[-8.0]])
        assert grad[0, 0] == pytest.approx(expected, rel=1e-4)


def test_generator_loss_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'non_saturating' and 'minimax'"):
        losses.generator_loss(np.zeros((1, 1), "float32"), "wasserstein")
