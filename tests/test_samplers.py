"""zoo.samplers.GaussianMixtureSampler: maximum-likelihood fit, sampling moments,
and the point of it: codes closer to the real codes than N(0, I) gives."""

import keras
import numpy as np
import pytest

import zoo
from zoo import metrics
from zoo.latent import encode_codes
from zoo.samplers import GaussianMixtureSampler


def _two_blobs(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    first = rng.standard_normal((3 * n // 4, 2)) @ np.array([[1.0, 0.0], [0.8, 0.5]]).T + np.array([4.0, 0.0])
    second = 0.3 * rng.standard_normal((n // 4, 2)) + np.array([-3.0, 2.0])
    return np.concatenate([first, second])


def test_fit_recovers_a_known_mixture_and_samples_its_moments():
    sampler = GaussianMixtureSampler(2, seed=0).fit(_two_blobs())
    order = np.argsort(sampler.mixture.means_[:, 0])
    np.testing.assert_allclose(sampler.mixture.weights_[order], [0.25, 0.75], atol=0.02)
    np.testing.assert_allclose(sampler.mixture.means_[order], [[-3.0, 2.0], [4.0, 0.0]], atol=0.1)
    samples = sampler.sample(20000, seed=1)
    assert samples.shape == (20000, 2) and samples.dtype == np.float32
    big = samples[samples[:, 0] > 0.5]
    assert len(big) / len(samples) == pytest.approx(0.75, abs=0.02)
    # The big blob's covariance is A A^T with A = [[1, 0], [0.8, 0.5]].
    np.testing.assert_allclose(np.cov(big, rowvar=False), [[1.0, 0.8], [0.8, 0.89]], atol=0.06)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_every_covariance_type_samples_its_fitted_covariance(covariance_type):
    codes = np.random.default_rng(2).standard_normal((5000, 3)) * np.array([0.5, 1.0, 2.0])
    sampler = GaussianMixtureSampler(1, covariance_type=covariance_type, seed=0).fit(codes)
    fitted = {
        "diag": lambda c: np.diag(c[0]),
        "spherical": lambda c: c[0] * np.eye(3),
        "tied": lambda c: c,
    }[covariance_type](sampler.mixture.covariances_)
    np.testing.assert_allclose(np.cov(sampler.sample(40000, seed=3), rowvar=False), fitted, atol=0.08)


def test_sampling_is_reproducible_by_seed():
    sampler = GaussianMixtureSampler(3, seed=0).fit(_two_blobs(600))
    np.testing.assert_array_equal(sampler.sample(10, seed=5), sampler.sample(10, seed=5))
    assert not np.allclose(sampler.sample(10, seed=5), sampler.sample(10, seed=6))


def test_bad_use_gives_clear_errors():
    with pytest.raises(ValueError, match="not fitted yet"):
        GaussianMixtureSampler(2).sample(3)
    with pytest.raises(ValueError, match="n_components=0"):
        GaussianMixtureSampler(0)
    with pytest.raises(ValueError, match="cannot fit 5"):
        GaussianMixtureSampler(5).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D array"):
        GaussianMixtureSampler(1).fit(np.zeros(10))


@pytest.fixture(scope="module")
def trained_ae(digits):
    keras.utils.set_random_seed(0)
    ae = zoo.Autoencoder((8, 8, 1), 4, filters=(8,), hidden_dim=32, seed=0)
    ae.compile(optimizer=keras.optimizers.Adam(3e-3))
    ae.fit(digits[0], epochs=15, batch_size=32, verbose=0)
    return ae


def test_a_mixture_of_the_training_codes_beats_the_standard_normal(digits, trained_ae):
    # An AE's codes are not N(0, I): sampled mixture codes must land much nearer
    # the codes of held-out images (in Fréchet distance) than N(0, I) codes, and
    # the mixture must give those held-out codes a higher likelihood.
    test_images = zoo.data.digits_arrays("test")[0]
    sampler = GaussianMixtureSampler(10, seed=0).fit_model(trained_ae, digits[0])
    assert sampler.latent_dim == 4
    held_out = encode_codes(trained_ae, test_images)
    mixture_fd = metrics.frechet_distance_of_features(sampler.sample(5000, seed=0), held_out)
    normal_fd = metrics.frechet_distance_of_features(np.random.default_rng(0).standard_normal((5000, 4)), held_out)
    assert mixture_fd < 0.2 * normal_fd
    standard_normal_ll = float(np.mean(-0.5 * np.sum(held_out**2, axis=1) - 2.0 * np.log(2 * np.pi)))
    assert sampler.log_likelihood(held_out) > standard_normal_ll
    images = sampler.generate(trained_ae, 7, seed=0)
    assert images.shape == (7, 8, 8, 1) and images.min() >= 0.0 and images.max() <= 1.0
