"""Behaviour of the three models on the bundled digits (8x8x1, tiny networks)."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from tests.model_helpers import fixed_latents, run_fit_test, run_saving_test, run_serialization_test

SMALL = {"image_shape": (8, 8, 1), "filters": (8, 16), "hidden_dim": 32}
AE_KWARGS = {**SMALL, "latent_dim": 4}
DAE_KWARGS = {**SMALL, "latent_dim": 32, "noise_stddev": 0.3}
VAE_KWARGS = {**SMALL, "latent_dim": 4}
MLP_VAE_KWARGS = {"image_shape": (8, 8, 1), "latent_dim": 4, "filters": (), "hidden_dim": (32, 16)}
GAUSSIAN_VAE_KWARGS = {**SMALL, "latent_dim": 4, "likelihood": "gaussian", "beta": 0.5}
DCGAN_KWARGS = {"image_shape": (8, 8, 1), "latent_dim": 8, "generator_filters": (32, 16), "kernel_size": 3}


def compiled(cls, kwargs, lr=2e-3):
    model = cls(seed=1, **kwargs)
    if cls is zoo.DCGAN:
        model.compile()
    else:
        model.compile(optimizer=keras.optimizers.Adam(lr))
    return model


# -- fit, evaluate, save ------------------------------------------------------------

@pytest.mark.parametrize(
    "cls, kwargs, tracked",
    [
        (zoo.Autoencoder, AE_KWARGS, {"loss", "mse"}),
        (zoo.Autoencoder, DAE_KWARGS, {"loss", "mse"}),
        (zoo.VAE, VAE_KWARGS, {"loss", "reconstruction_loss", "kl_loss"}),
        (zoo.VAE, GAUSSIAN_VAE_KWARGS, {"loss", "reconstruction_loss", "kl_loss"}),
        (zoo.VAE, {**MLP_VAE_KWARGS, "kl_warmup_steps": 20}, {"loss", "reconstruction_loss", "kl_loss"}),
    ],
    ids=["ae", "dae", "vae", "gaussian-vae", "mlp-vae-warmup"],
)
def test_autoencoders_learn_digits_evaluate_and_reload(cls, kwargs, tracked, digits, tmp_path):
    images, labels = digits
    model = compiled(cls, kwargs)
    before = model.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    assert set(before) == tracked
    history = run_fit_test(model, images, epochs=6, labels=labels)  # (x, y) batches are accepted
    assert history["loss"][-1] < 0.85 * history["loss"][0]
    after = model.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]
    reconstruction = keras.ops.convert_to_numpy(model(images[:32]))
    assert reconstruction.shape == (32, 8, 8, 1) and reconstruction.min() >= 0 and reconstruction.max() <= 1
    run_saving_test(model, tmp_path)


def test_dcgan_learns_the_digit_distribution_and_reloads(digits, tmp_path):
    images, _ = digits
    model = compiled(zoo.DCGAN, DCGAN_KWARGS)
    data_mean = images.mean(axis=0)

    def distance_to_data_mean():
        samples = keras.ops.convert_to_numpy(model.sample(512, seed=3))
        return float(np.abs(samples.mean(axis=0) - data_mean).mean())

    untrained = distance_to_data_mean()
    history = run_fit_test(model, images, epochs=12, batch_size=32)
    # GAN losses do not go down monotonically; what must improve is how the samples look.
    assert distance_to_data_mean() < 0.4 * untrained
    assert 0.0 < history["real_score"][-1] < 1.0
    result = model.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    assert set(result) == {"d_loss", "g_loss", "real_score", "fake_score"}
    reloaded = run_saving_test(model, tmp_path)
    # Both players' optimizer states come back, so training can resume where it stopped.
    assert int(reloaded.d_optimizer.iterations) == int(model.d_optimizer.iterations) > 0
    assert int(reloaded.g_optimizer.iterations) == int(model.g_optimizer.iterations) > 0


@pytest.mark.parametrize(
    "cls, kwargs",
    [(zoo.Autoencoder, DAE_KWARGS), (zoo.VAE, GAUSSIAN_VAE_KWARGS), (zoo.DCGAN, {**DCGAN_KWARGS, "loss": "minimax"}),
     (zoo.VAE, {**MLP_VAE_KWARGS, "kl_warmup_steps": 7}), (zoo.Autoencoder, {**MLP_VAE_KWARGS, "hidden_dim": 16})],
    ids=["dae", "vae", "dcgan", "mlp-vae", "mlp-ae"],
)
def test_get_config_round_trip(cls, kwargs):
    run_serialization_test(cls, {**kwargs, "seed": 7})


def test_mlp_vae_has_dense_layers_only_and_the_widths_asked_for():
    model = zoo.VAE(**MLP_VAE_KWARGS)
    layers_of = lambda net: [(type(layer).__name__, getattr(layer, "units", None)) for layer in net.layers]  # noqa: E731
    assert layers_of(model.encoder) == [("InputLayer", None), ("Flatten", None), ("Dense", 32), ("Dense", 16),
                                        ("Dense", 4), ("Dense", 4)]
    # The decoder runs the widths backwards and ends in one Dense layer giving every pixel's logit.
    assert layers_of(model.decoder) == [("InputLayer", None), ("Dense", 16), ("Dense", 32), ("Dense", 64),
                                        ("Reshape", None)]
    assert model.decode(np.zeros((3, 4), "float32")).shape == (3, 8, 8, 1)


def move_q_away_from_the_prior(model):
    """Shift q(z|x)'s mean by 2 in every latent dimension and spread its log-variance (x3), so the KL is
    well away from 0 (6 to 24 nats over 40 random initialisations of the MLP VAE under JAX).

    (Scaling both heads' random kernels by 30 did the same but, for about one initialisation in 40,
    pushed log_var past 88, where exp(log_var) overflows float32 and the KL is inf.)"""
    mean_bias = model.encoder.get_layer("mean").bias
    mean_bias.assign(mean_bias + 2.0)
    log_var_kernel = model.encoder.get_layer("log_var").kernel
    log_var_kernel.assign(log_var_kernel * 3.0)


def test_kl_warmup_weights_the_kl_by_the_step_in_training_only(digits):
    """loss = reconstruction + min(1, step / kl_warmup_steps) * KL at each training step
    (step: the optimizer's iterations before it), and evaluate() reports the full ELBO."""
    images = digits[0][:64]
    model = zoo.VAE(**{**MLP_VAE_KWARGS, "kl_warmup_steps": 4}, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    move_q_away_from_the_prior(model)  # a KL well away from 0, so the weight shows in the loss
    history = model.fit(images, batch_size=64, epochs=6, shuffle=False, verbose=0).history  # one step per epoch
    for step, (loss, reconstruction, kl) in enumerate(zip(history["loss"], history["reconstruction_loss"], history["kl_loss"])):
        assert kl > 1.0
        assert loss == pytest.approx(reconstruction + min(1.0, step / 4) * kl, rel=1e-5)
    result = model.evaluate(images, batch_size=64, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(result["reconstruction_loss"] + result["kl_loss"], rel=1e-5)


# -- VAE maths ------------------------------------------------------------------------

def test_vae_reported_kl_equals_numpy_on_encoder_outputs(digits):
    model = compiled(zoo.VAE, VAE_KWARGS)
    move_q_away_from_the_prior(model)  # so the check is not about numbers near 0
    images = digits[0][:200]
    reported = model.evaluate(images, batch_size=200, verbose=0, return_dict=True)["kl_loss"]
    mean, log_var = (keras.ops.convert_to_numpy(t).astype(np.float64) for t in model.encode(images))
    expected = np.mean(0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=1))
    assert expected > 1.0
    assert reported == pytest.approx(expected, rel=1e-5)


def test_vae_sampling_is_reproducible_and_in_range():
    model = zoo.VAE(**VAE_KWARGS)
    a, b = (keras.ops.convert_to_numpy(model.sample(6, seed=11)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 8, 8, 1) and a.min() >= 0 and a.max() <= 1
    c = keras.ops.convert_to_numpy(model.sample(6))
    d = keras.ops.convert_to_numpy(model.sample(6))
    assert not np.array_equal(c, d)  # the model's own seed generator advances


def test_denoising_noise_applies_in_training_only(digits):
    images = digits[0][:64]
    for kwargs, noisy in ((AE_KWARGS, False), (DAE_KWARGS, True)):
        model = compiled(zoo.Autoencoder, kwargs)
        model.fit(digits[0], epochs=2, batch_size=64, verbose=0)  # an untrained decoder ignores its input
        model.optimizer.learning_rate.assign(0.0)  # now measure, do not learn
        train_loss = model.train_on_batch(images, return_dict=True)["loss"]
        eval_loss = model.evaluate(images, batch_size=64, verbose=0, return_dict=True)["loss"]
        assert (abs(train_loss - eval_loss) > 1e-3) == noisy, (kwargs, train_loss, eval_loss)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images)), keras.ops.convert_to_numpy(model(images)))


# -- DCGAN: each player's update touches only its own network ------------------------

def _trainable(network):
    return [v.numpy().copy() for v in network.trainable_variables]


def _changed(before, network):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, network.trainable_variables)]


@pytest.mark.parametrize("frozen", ["generator", "discriminator"])
def test_dcgan_updates_touch_only_their_own_network(frozen, digits):
    model = zoo.DCGAN(seed=0, **DCGAN_KWARGS)
    lr = {"d_optimizer": keras.optimizers.Adam(1e-3), "g_optimizer": keras.optimizers.Adam(1e-3)}
    lr["g_optimizer" if frozen == "generator" else "d_optimizer"] = keras.optimizers.Adam(0.0)
    model.compile(**lr)
    g_before, d_before = _trainable(model.generator), _trainable(model.discriminator)
    model.train_on_batch(digits[0][:32])
    g_changed, d_changed = _changed(g_before, model.generator), _changed(d_before, model.discriminator)
    if frozen == "generator":
        assert not any(g_changed) and all(d_changed)
    else:
        assert all(g_changed) and not any(d_changed)


@pytest.mark.parametrize("loss", ["non_saturating", "minimax"])
def test_both_gan_losses_train(loss, digits):
    model = zoo.DCGAN(seed=0, **{**DCGAN_KWARGS, "loss": loss})
    model.compile()
    z = fixed_latents(model)
    before = keras.ops.convert_to_numpy(model.generate(z))
    history = run_fit_test(model, digits[0][:256], epochs=2, batch_size=32)
    assert not np.allclose(before, keras.ops.convert_to_numpy(model.generate(z)))
    if loss == "minimax":  # the generator's objective log(1 - D(G(z))) is negative
        assert all(v < 0 for v in history["g_loss"])
    else:
        assert all(v > 0 for v in history["g_loss"])


# -- shapes the public API promises ---------------------------------------------------

@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_every_model_handles_the_standard_image_shapes(shape):
    images = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    for model in (zoo.Autoencoder(shape, 8), zoo.VAE(shape, 8), zoo.DCGAN(shape, latent_dim=16)):
        z = fixed_latents(model, n=2)
        out = model.generate(z) if isinstance(model, zoo.DCGAN) else model.decode(z)
        assert tuple(out.shape) == (2, *shape)
        if not isinstance(model, zoo.DCGAN):
            assert tuple(model(images).shape) == (2, *shape)
    assert tuple(zoo.DCGAN(shape).discriminate(images).shape) == (2,)


# -- bad input: one ValueError naming the argument and what is allowed ----------------

@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: zoo.VAE((28, 28), 8), r"image_shape=\(28, 28\) must be three integers"),
        (lambda: zoo.VAE((28, 28, 2), 8), r"allowed channels are 1 and 3"),
        (lambda: zoo.Autoencoder((30, 30, 1), 8), r"multiples of 4"),
        (lambda: zoo.DCGAN((28, 26, 1)), r"multiples of 4"),
        (lambda: zoo.VAE((28, 28, 1), 0), r"latent_dim=0 must be an integer >= 1"),
        (lambda: zoo.DCGAN((28, 28, 1), latent_dim=-3), r"latent_dim=-3"),
        (lambda: zoo.VAE((28, 28, 1), 8, likelihood="poisson"), r"likelihood='poisson'.*'bernoulli', 'gaussian'"),
        (lambda: zoo.DCGAN((28, 28, 1), loss="wgan"), r"loss='wgan'.*'non_saturating', 'minimax'"),
        (lambda: zoo.Autoencoder((28, 28, 1), 8, loss="l1"), r"loss='l1'.*'bce', 'mse'"),
        (lambda: zoo.Autoencoder((28, 28, 1), 8, noise_stddev=-1), r"noise_stddev=-1 must be a finite number >= 0"),
        (lambda: zoo.VAE((28, 28, 1), 8, filters=(8, 16, 32)), r"multiples of 8"),
        (lambda: zoo.VAE((28, 28, 1), 8, hidden_dim=(512, 0)), r"hidden_dim\[1\]=0 must be an integer >= 1"),
        (lambda: zoo.VAE((28, 28, 1), 8, hidden_dim=-1), r"hidden_dim=-1 must be an integer >= 0"),
        (lambda: zoo.VAE((28, 28, 1), 8, kl_warmup_steps=-5), r"kl_warmup_steps=-5 must be an integer >= 0"),
        (lambda: zoo.DCGAN((28, 28, 1), generator_filters=()), r"generator_filters=\(\) must name at least one"),
    ],
)
def test_bad_hyperparameters_raise_one_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_batches_raise_at_the_first_batch():
    model = compiled(zoo.VAE, VAE_KWARGS)
    with pytest.raises(ValueError, match=r"built for image_shape=\(8, 8, 1\)"):
        model.fit(np.zeros((8, 16, 16, 1), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"4-D float batch"):
        model.fit(np.zeros((8, 8, 8), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, latent_dim\) = \(batch, 4\)"):
        model.decode(np.zeros((2, 5), "float32"))


def test_import_zoo_stays_light():
    """Keras itself imports scikit-learn when it is installed; genzoo must add nothing heavy."""
    code = (
        "import sys, keras; before = set(sys.modules); import zoo; "
        "added = set(sys.modules) - before; "
        "heavy = sorted(m for m in added | set(sys.modules) if m.split('.')[0] in ('tensorflow_datasets', 'onnx', 'onnxruntime', 'tf2onnx')); "
        "added_sklearn = sorted(m for m in added if m.split('.')[0] == 'sklearn'); "
        "print(heavy, added_sklearn); sys.exit(1 if heavy or added_sklearn else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "cls, kwargs",
    [(zoo.Autoencoder, AE_KWARGS), (zoo.VAE, VAE_KWARGS), (zoo.DCGAN, DCGAN_KWARGS)],
    ids=["ae", "vae", "dcgan"],
)
def test_mixed_bfloat16_trains_and_is_part_of_the_saved_config(cls, kwargs, digits, tmp_path):
    """The policy is the model's, not the global one: it trains in bfloat16 with float32
    weights and float32 losses, and a reload in a float32 session computes as it trained."""
    assert keras.mixed_precision.global_policy().name == "float32"
    model = cls(seed=1, dtype="mixed_bfloat16", **kwargs)
    inner = [layer for net in (model.encoder if model.has_encoder else model.discriminator,) for layer in net.layers
             if layer.weights and layer.name not in ("mean", "log_var", "code", "logit")]
    assert inner and all(layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32" for layer in inner)
    model.compile_default()
    history = run_fit_test(model, digits[0][:256], epochs=1, batch_size=64)
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert model.get_config()["dtype"]["config"]["name"] == "mixed_bfloat16"
    z = fixed_latents(model)
    images = keras.ops.convert_to_numpy(model.generate(z))
    assert images.dtype == np.float32  # the output layers stay float32
    reloaded = run_saving_test(model, tmp_path)
    assert reloaded.dtype_policy.name == "mixed_bfloat16"


def test_keras_weight_averaging_of_the_generator_runs_through_the_dcgan_steps(digits):
    """Adam(use_ema=True) for the generator (as benchmarks/dcgan_recipe.py trains it): the custom
    train steps keep Keras' average on every backend, and finalize_variable_values writes it in."""
    model = zoo.DCGAN(seed=0, **DCGAN_KWARGS)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3),
                  g_optimizer=keras.optimizers.Adam(1e-3, use_ema=True, ema_momentum=0.5))
    after_each_step = []
    for start in (0, 32, 64):
        model.train_on_batch(digits[0][start:start + 32])
        after_each_step.append(_trainable(model.generator))
    # The first step's weights start the average; each later step moves it halfway to the weights.
    w1, w2, w3 = after_each_step
    expected = [0.25 * a + 0.25 * b + 0.5 * c for a, b, c in zip(w1, w2, w3)]
    assert not all(np.allclose(e, w) for e, w in zip(expected, w3))
    model.g_optimizer.finalize_variable_values(model.generator.trainable_variables)
    for e, v in zip(expected, model.generator.trainable_variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), e, rtol=1e-5, atol=1e-6)


def test_keras_learning_rate_callbacks_reach_both_dcgan_players(digits):
    model = compiled(zoo.DCGAN, DCGAN_KWARGS)
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-4 * (epoch + 1))
    model.fit(digits[0][:64], epochs=2, batch_size=32, verbose=0, callbacks=[schedule])
    rates = [float(keras.ops.convert_to_numpy(o.learning_rate)) for o in (model.d_optimizer, model.g_optimizer)]
    assert rates == [pytest.approx(2e-4), pytest.approx(2e-4)]
