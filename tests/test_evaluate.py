"""zoo.evaluate, zoo.classifier and `zoo evaluate`: likelihood estimators against
a model with a closed-form marginal, baselines against NumPy, the domain
classifier on the bundled digits, and the CLI on a real run directory."""

import json
import math
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import zoo
from zoo import classifier, evaluate, losses, metrics


class LinearGaussianModel:
    """z ~ N(0, I_d), x | z ~ N(W z, s^2 I_D): p(x) = N(0, W W^T + s^2 I) in closed form.

    W has orthogonal columns, so the exact posterior p(z|x) is a diagonal
    Gaussian: `encode` gives it when `exact=True`, else a deliberately wrong
    one (shrunk mean, inflated variance) so importance weighting has work to do.
    """

    def __init__(self, column_scales=(2.0, 0.7), data_dim=5, noise_std=0.5, exact=True):
        q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((data_dim, len(column_scales))))
        self.w = q * np.asarray(column_scales)
        self.noise_var = noise_std**2
        self.latent_dim, self.data_dim, self.exact = len(column_scales), data_dim, exact
        post_cov = np.linalg.inv(np.eye(self.latent_dim) + self.w.T @ self.w / self.noise_var)
        assert np.allclose(post_cov, np.diag(np.diag(post_cov)))
        self.post_log_var = np.log(np.diag(post_cov)).astype(np.float32)
        self.post_gain = (post_cov @ self.w.T / self.noise_var).astype(np.float32)

    has_likelihood = True

    def encode(self, images):
        x = ops.reshape(ops.cast(images, "float32"), (-1, self.data_dim))
        mean, log_var = ops.matmul(x, ops.transpose(self.post_gain)), ops.convert_to_tensor(self.post_log_var)
        if not self.exact:
            mean, log_var = 0.5 * mean, log_var + 1.0
        return mean, ops.broadcast_to(log_var, ops.shape(mean))

    def decoder(self, z, training=False):
        return ops.matmul(z, ops.transpose(self.w.astype(np.float32)))

    def log_likelihood(self, images, outputs):
        x = ops.reshape(ops.cast(images, "float32"), (-1, self.data_dim))
        return losses.gaussian_log_likelihood(x, outputs, math.log(self.noise_var))

    def log_importance_weights(self, images, eps):
        """The VAE's composition (zoo.vae.VAE.log_importance_weights) on this model."""
        mean, log_var = self.encode(images)
        z = mean[None] + ops.exp(0.5 * log_var)[None] * ops.convert_to_tensor(eps)
        images = ops.convert_to_tensor(images)
        k, batch = ops.shape(eps)[0], ops.shape(images)[0]
        tiled = ops.reshape(ops.broadcast_to(images[None], (k, batch, self.data_dim)), (-1, self.data_dim))
        log_px = ops.reshape(self.log_likelihood(tiled, self.decoder(ops.reshape(z, (-1, self.latent_dim)))), (k, batch))
        return losses.log_importance_weights(log_px, z, ops.convert_to_tensor(eps), log_var[None])

    def sample_data(self, n, seed=1):
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim))
        return (z @ self.w.T + math.sqrt(self.noise_var) * rng.standard_normal((n, self.data_dim))).astype(np.float32)

    def exact_nll(self, x):
        cov = self.w @ self.w.T + self.noise_var * np.eye(self.data_dim)
        _, logdet = np.linalg.slogdet(cov)
        maha = np.einsum("ni,ij,nj->n", x, np.linalg.inv(cov), x)
        return 0.5 * (self.data_dim * math.log(2 * math.pi) + logdet + maha)


def test_iwae_with_the_exact_posterior_is_the_exact_likelihood_for_any_k():
    model = LinearGaussianModel()
    x = model.sample_data(7)
    exact = model.exact_nll(x)
    np.testing.assert_allclose(evaluate.iwae_nll(model, x, k=1), exact, rtol=1e-5)
    # k = 10 in chunks of 3, 3, 3, 1: the chunked log-sum-exp must combine exactly.
    np.testing.assert_allclose(evaluate.iwae_nll(model, x, k=10, max_batch=3), exact, rtol=1e-5)
    # The one-sample -ELBO (analytic KL) equals -log p(x) only in expectation when q is exact.
    x = model.sample_data(4000, seed=2)
    gap = evaluate.negative_elbo(model, x) - model.exact_nll(x)
    assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(len(gap))


def test_iwae_tightens_towards_the_exact_likelihood_as_k_grows():
    model = LinearGaussianModel(exact=False)
    x = model.sample_data(40)
    exact = model.exact_nll(x).mean()
    elbo = evaluate.negative_elbo(model, x).mean()
    k1, k10, k2000 = (evaluate.iwae_nll(model, x, k=k, max_batch=512).mean() for k in (1, 10, 2000))
    assert elbo > exact + 0.5  # the wrong posterior costs a visible gap
    assert k1 > k10 > k2000 >= exact - 0.02
    assert k2000 == pytest.approx(exact, abs=0.05)
    assert k1 == pytest.approx(elbo, abs=0.3)  # k = 1 is a one-sample ELBO (Monte Carlo KL)


def test_iwae_rejects_k_below_one():
    with pytest.raises(ValueError, match="k=0"):
        evaluate.iwae_nll(LinearGaussianModel(), np.zeros((2, 5), np.float32), k=0)


def test_bits_per_dim_of_the_uniform_density_is_eight():
    # The uniform density on [0, 1]^D has NLL 0 nats: 8 bits per 8-bit pixel.
    assert evaluate.bits_per_dim(0.0, 784) == pytest.approx(8.0)
    assert evaluate.bits_per_dim(-784 * math.log(2.0), 784) == pytest.approx(7.0)


def test_binarize_and_dequantize_follow_the_grey_levels():
    grey = np.full((200, 8, 8, 1), 0.3, np.float32)
    binary = evaluate.binarize(grey, seed=0)
    assert set(np.unique(binary)) == {0.0, 1.0} and binary.mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_array_equal(binary, evaluate.binarize(grey, seed=0))
    levels = np.arange(256, dtype=np.float32) / 255.0
    deq = evaluate.dequantize(levels[:, None, None, None], seed=0).ravel()
    assert np.all(deq >= np.arange(256) / 256.0) and np.all(deq < np.arange(1, 257) / 256.0)


def test_likelihood_of_a_vae_in_nats_and_in_bits_per_dim(digits):
    # The ordering -ELBO >= IWAE is tested on the linear-Gaussian model; here the units and protocol.
    keras.utils.set_random_seed(0)
    images = digits[0][:20]
    bernoulli = evaluate.likelihood(zoo.VAE((8, 8, 1), 2, filters=(4,), hidden_dim=8, seed=0), images, k=20)
    assert 0 < bernoulli["iwae_nll_nats"] < 64 * math.log(2) + 5  # an untrained model: near 1 bit per pixel
    assert abs(bernoulli["negative_elbo_nats"] - bernoulli["iwae_nll_nats"]) < 5
    assert bernoulli["data"].startswith("binarized")
    assert "iwae_nll_bits_per_dim" not in bernoulli and bernoulli["n_images"] == 20
    gaussian = evaluate.likelihood(zoo.VAE((8, 8, 1), 2, likelihood="gaussian", filters=(4,), hidden_dim=8, seed=0),
                                   images, k=20, n_images=10)
    assert gaussian["n_images"] == 10
    assert gaussian["iwae_nll_bits_per_dim"] == pytest.approx(evaluate.bits_per_dim(gaussian["iwae_nll_nats"], 64))
    assert gaussian["iwae_nll_stderr_bits_per_dim"] == pytest.approx(gaussian["iwae_nll_stderr"] / (64 * math.log(2)))


def test_reconstruction_vs_pca_matches_numpy(digits):
    images = digits[0]
    train, test = images[:1000], images[1000:1100]
    ae = zoo.Autoencoder((8, 8, 1), 3, filters=(4,), hidden_dim=8, seed=0)
    result = evaluate.reconstruction_vs_pca(ae, train, test)
    recon = keras.ops.convert_to_numpy(ae.decode(ae.encode(test)))
    assert result["model_mse"] == pytest.approx(float(np.mean((recon - test) ** 2)), rel=1e-5)
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    basis = np.linalg.svd(flat - mean, full_matrices=False)[2][:3]
    t = test.reshape(len(test), -1)
    pca = np.clip((t - mean) @ basis.T @ basis + mean, 0, 1)
    assert result["pca_mse"] == pytest.approx(float(np.mean((pca - t) ** 2)), rel=1e-4)
    assert result["code_size"] == 3 and result["model_over_pca"] == pytest.approx(result["model_mse"] / result["pca_mse"])


@pytest.fixture(scope="module")
def digits_classifier(digits, tmp_path_factory):
    cache = tmp_path_factory.mktemp("classifier-cache")
    test = zoo.data.digits_arrays("test")
    clf = classifier.load_or_train("digits", digits, test, cache_dir=str(cache))
    return clf, str(cache), test


def test_domain_classifier_learns_the_digits_and_is_cached(digits, digits_classifier):
    clf, cache, test = digits_classifier
    assert clf.test_accuracy > 0.95 and clf.info["cached"] is False
    assert clf.info["epochs"] == classifier.default_epochs(len(digits[0])) >= 84
    assert clf.features(test[0][:5]).shape == (5, 128)
    again = classifier.load_or_train("digits", digits, test, cache_dir=cache)
    assert again.info["cached"] is True and again.test_accuracy == clf.test_accuracy
    np.testing.assert_allclose(again.features(test[0][:50]), clf.features(test[0][:50]), rtol=1e-5, atol=1e-6)
    # Other data means another key, so it never reuses a wrong cache entry.
    other = classifier.fingerprint(digits[0][:-1], digits[1][:-1], 15, 0)
    assert other != classifier.fingerprint(digits[0], digits[1], 15, 0)


def test_domain_classifier_rejects_the_wrong_image_shape(digits_classifier):
    with pytest.raises(ValueError, match=r"\(n, 8, 8, 1\)"):
        digits_classifier[0].features(np.zeros((2, 28, 28, 1), np.float32))


def test_sample_quality_ranks_real_images_above_noise_and_coverage_sees_collapse(digits, digits_classifier):
    clf, _, (test_images, test_labels) = digits_classifier
    floor = evaluate.real_floor(clf, digits[0], test_images, n=359, kid_subset_size=200, kid_subsets=10)
    noise = np.random.default_rng(0).random((359, 8, 8, 1)).astype(np.float32)
    bad = evaluate.sample_quality(clf, noise, test_images, kid_subset_size=200, kid_subsets=10)
    assert floor["domain_fid"] < 0.1 * bad["domain_fid"] and floor["domain_kid"] < 0.1 * bad["domain_kid"]
    real = evaluate.mode_coverage(clf, test_images, digits[1])
    assert real["classes_covered"] == 10 and real["kl"] < 0.05
    collapsed = evaluate.mode_coverage(clf, test_images[test_labels == 4], digits[1])
    assert collapsed["classes_covered"] <= 2 and collapsed["max_fraction"] > 0.85 and collapsed["kl"] > 1.5


def test_generate_uses_the_sampler_or_the_prior():
    vae = zoo.VAE((8, 8, 1), 2, filters=(4,), hidden_dim=8, seed=0)

    class Fixed:
        def sample(self, n, seed=None):
            return np.zeros((n, 2), np.float32)

    fixed = evaluate.generate(vae, 5, sampler=Fixed())
    np.testing.assert_allclose(fixed, np.repeat(keras.ops.convert_to_numpy(vae.decode(np.zeros((1, 2)))), 5, 0), atol=1e-6)
    prior = evaluate.generate(vae, 2500, seed=3, batch_size=1000)
    assert prior.shape == (2500, 8, 8, 1) and prior.dtype == np.float32
    assert np.ptp(prior.reshape(2500, -1), axis=0).max() > 0  # different images, not one repeated
    gan = zoo.DCGAN((8, 8, 1), latent_dim=4, generator_filters=(8, 4), seed=0)
    images = evaluate.generate(gan, 6, seed=1)
    assert images.shape == (6, 8, 8, 1) and images.min() >= 0.0 and images.max() <= 1.0


def test_code_clustering_scores_the_vae_codes(digits):
    vae = zoo.VAE((8, 8, 1), 4, filters=(4,), hidden_dim=16, seed=0)
    result = evaluate.code_clustering(vae, digits[0][:300], digits[1][:300])
    assert result["n_clusters"] == 10 and 0.0 <= result["nmi"] <= 1.0 and 0.1 <= result["accuracy"] <= 1.0


def test_inception_fid_feeds_299x299_rgb_in_minus_one_to_one():
    # A stand-in feature model with the real one's input (299x299 RGB in [-1, 1]): per-channel means.
    pooling = keras.Sequential([keras.Input((299, 299, 3)), keras.layers.GlobalAveragePooling2D()])
    rng = np.random.default_rng(0)
    generated = np.clip(rng.random((40, 8, 8, 1)) * rng.random((40, 1, 1, 1)), 0, 1).astype(np.float32)
    real = rng.random((30, 8, 8, 1)).astype(np.float32)
    result = evaluate.inception_fid(generated, real, batch_size=16, inception=pooling)

    def channel_means(images):  # bilinear resizing keeps the mean of a smooth image
        return np.repeat(2.0 * images.mean(axis=(1, 2)) - 1.0, 3, axis=1)

    expected = metrics.frechet_distance_of_features(channel_means(generated), channel_means(real))
    assert result["available"] is True and result["n_generated"] == 40 and result["n_real"] == 30
    assert result["fid"] == pytest.approx(expected, rel=0.05)


def test_inception_fid_reports_unavailable_weights_instead_of_failing(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    result = evaluate.inception_fid(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8, 1)))
    assert result["available"] is False and "URL fetch failure" in result["reason"]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from zoo import training

    out = tmp_path_factory.mktemp("runs") / "vae"
    training.train("vae", dataset="digits", epochs=2, out=str(out), latent_dim=4, verbose=0)
    return out


def test_zoo_evaluate_writes_eval_json_and_prints_the_table(vae_run, digits_classifier):
    _, cache, _ = digits_classifier
    env = {**os.environ, "GENZOO_CACHE": os.path.dirname(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "zoo_cli", "evaluate", str(vae_run), "--k", "8", "--n-likelihood", "40",
         "--n-samples", "300", "--sampler", "gmm", "--components", "3", "--cache-dir", cache, "--inception"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with open(vae_run / "eval.json") as f:
        results = json.load(f)
    assert results["model"] == "VAE" and results["sampler"] == "GaussianMixtureSampler"
    assert results["likelihood"]["k"] == 8 and results["likelihood"]["n_images"] == 40
    assert results["classifier"]["cached"] is True and results["classifier"]["test_accuracy"] > 0.9
    assert results["sample_quality"]["n_generated"] == 300 and results["real_floor"]["domain_fid"] >= 0
    assert sum(results["coverage"]["counts"]) == 300
    for row in ("-log p(x) IWAE (nats; k=8, 40 test images", "PCA MSE/pixel (4 components)", "real-vs-real floor"):
        assert row in proc.stdout
    assert f"{results['likelihood']['iwae_nll_nats']:.2f}" in proc.stdout
    # Not a terminal: progress is a line per stage (and per 10% of the long ones) on stderr, not in the table.
    assert "evaluate: -log p(x) by IWAE, k=8 on 40 images: 100% (320/320 samples" in proc.stderr
    assert "evaluate: generating images for FID/KID and coverage: 100% (300/300 images" in proc.stderr
    assert "evaluate:" not in proc.stdout
    # Offline (no cached ImageNet weights) the Inception FID is reported unavailable, not a crash.
    if results["inception"]["available"]:
        assert results["inception_real_floor"]["fid"] >= 0 and "Inception FID / real floor" in proc.stdout
    else:
        assert re.search(r"Inception FID +unavailable \(" + re.escape(results["inception"]["reason"]), proc.stdout)


def test_zoo_evaluate_gives_one_line_errors(tmp_path, capsys):
    from zoo_cli import main as cli

    assert cli.main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo evaluate: error:") and "model.keras not found" in err and "\n" not in err
    os.makedirs(tmp_path / "gan")
    zoo.DCGAN((8, 8, 1), latent_dim=4, generator_filters=(8, 4)).save(tmp_path / "gan" / "model.keras")
    (tmp_path / "gan" / "config.json").write_text(json.dumps({"model": "dcgan", "dataset": "digits"}))
    assert cli.main(["evaluate", str(tmp_path / "gan"), "--sampler", "gmm"]) == 2
    assert "a DCGAN has none" in capsys.readouterr().err
