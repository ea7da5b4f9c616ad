"""zoo.WGANGP and zoo.wgan_steps: the gradient penalty against a known gradient norm, uniform
interpolation weights, n_critic, fit/save/export; every backend (tests/test_backend_matrix.py)."""

import keras
import numpy as np
import pytest
from keras import ops

import zoo
from tests import model_helpers
from zoo import wgan_steps

KWARGS = {"image_shape": (8, 8, 1), "latent_dim": 8, "generator_filters": (16, 8), "kernel_size": 3, "seed": 0}


def _linear_critic(w):
    """f(x) = w . x per example: its gradient is w everywhere, so |grad f| = |w|."""
    return lambda x: ops.sum(x * w, axis=(1, 2, 3))[:, None]


def _pair(n=4, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, (n, 8, 8, 1)).astype("float32")
    fake = rng.uniform(-1, 1, (n, 8, 8, 1)).astype("float32")
    eps = rng.uniform(0, 1, (n, 1, 1, 1)).astype("float32")
    return real, fake, eps


@pytest.mark.parametrize("norm", [3.0, 1.0, 0.25])
def test_the_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared(norm):
    w = np.random.default_rng(1).standard_normal((1, 8, 8, 1)).astype("float32")
    w *= norm / np.linalg.norm(w)
    real, fake, eps = _pair()
    penalty = ops.convert_to_numpy(wgan_steps.gradient_penalty(_linear_critic(ops.convert_to_tensor(w)), real, fake, eps))
    np.testing.assert_allclose(penalty, np.full(4, (norm - 1.0) ** 2), rtol=1e-5, atol=1e-6)
    # In the critic's objective, weighted by lambda = gp_weight.
    model = zoo.WGANGP(**KWARGS)
    _, terms = wgan_steps.critic_terms(model, _linear_critic(ops.convert_to_tensor(w)), real, fake, eps)
    assert float(terms["gp"]) == pytest.approx((norm - 1.0) ** 2, rel=1e-5, abs=1e-6)
    f_real, f_fake = np.sum(real * w, axis=(1, 2, 3)), np.sum(fake * w, axis=(1, 2, 3))
    want = f_fake.mean() - f_real.mean() + 10.0 * (norm - 1.0) ** 2
    assert float(terms["c_loss"]) == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_the_penalty_is_differentiated_again_for_the_critic_weights():
    """d/dw sum_i (|w| - 1)^2 = n * 2 (|w| - 1) w / |w|: the second-order path each backend's step uses."""
    w = np.random.default_rng(2).standard_normal((1, 8, 8, 1)).astype("float32")
    real, fake, eps = _pair()
    got = model_helpers.gradient(lambda v: wgan_steps.gradient_penalty(_linear_critic(v), real, fake, eps), w)
    length = np.linalg.norm(w)
    np.testing.assert_allclose(got, 4 * 2 * (length - 1) * w / length, rtol=1e-4, atol=1e-5)


def test_the_penalty_through_a_keras_critic():
    """A Dense critic without bias is linear too: same closed form through real layers."""
    critic = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)])
    w = ops.convert_to_numpy(critic.weights[0])
    real, fake, eps = _pair()
    penalty = ops.convert_to_numpy(wgan_steps.gradient_penalty(lambda x: critic(x), real, fake, eps))
    np.testing.assert_allclose(penalty, np.full(4, (np.linalg.norm(w) - 1) ** 2), rtol=1e-5, atol=1e-6)


def test_interpolation_weights_are_uniform_on_0_1_one_per_example():
    from scipy import stats

    model = zoo.WGANGP(**KWARGS)
    eps = ops.convert_to_numpy(model._interpolation_weights(4000))
    assert eps.shape == (4000, 1, 1, 1)
    assert eps.min() >= 0.0 and eps.max() <= 1.0  # a normal draw would put ~half below 0
    assert stats.kstest(eps.ravel(), "uniform").pvalue > 1e-3
    assert stats.kstest(eps.ravel(), "norm").pvalue < 1e-6
    # x_hat lies on the segment from fake (eps = 0) to real (eps = 1), the whole image mixed alike.
    real, fake, _ = _pair(n=2)
    x = ops.convert_to_numpy(wgan_steps.interpolate(real, fake, np.array([0.0, 1.0], "float32").reshape(2, 1, 1, 1)))
    np.testing.assert_allclose(x[0], fake[0])
    np.testing.assert_allclose(x[1], real[1])


def test_fit_n_critic_updates_each_with_its_own_uniform_weights(digits):
    """One fit (compiling a WGAN-GP step is slow under JAX): n_critic updates per generator update,
    n_critic fresh eps draws in a step, the critic's loss going down, evaluate, save and reload."""
    images, _ = digits
    keras.utils.set_random_seed(0)
    model = zoo.WGANGP(n_critic=3, **KWARGS)
    model.compile_default(learning_rate=1e-3)
    drawn = []
    draw = model._interpolation_weights

    def recording(batch_size):
        eps = draw(batch_size)
        drawn.append(tuple(eps.shape))
        return eps

    model._interpolation_weights = recording
    history = model_helpers.run_fit_test(model, images[:256], epochs=3, batch_size=64)
    # Traced once (TensorFlow, JAX) or run eagerly per step (PyTorch, 4 steps an epoch): 3 draws a step.
    assert drawn in ([(64, 1, 1, 1)] * 3, [(64, 1, 1, 1)] * 3 * 12), drawn
    assert int(ops.convert_to_numpy(model.g_optimizer.iterations)) == 12 == model.training_steps
    assert int(ops.convert_to_numpy(model.d_optimizer.iterations)) == 36
    assert history["c_loss"][-1] < history["c_loss"][0], history
    del model._interpolation_weights
    logs = model.evaluate(images[:64], batch_size=64, verbose=0, return_dict=True)
    assert set(logs) == {"c_loss", "gp", "w_distance", "g_loss"} and all(np.isfinite(list(logs.values())))
    assert logs["gp"] > 0


def test_defaults_are_the_papers():
    model = zoo.WGANGP(**KWARGS)
    assert model.n_critic == 5 and model.gp_weight == 10.0
    model.compile()
    for opt in model.optimizers:
        assert float(ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(1e-4)
        assert opt.beta_1 == 0.0 and opt.beta_2 == 0.9
    layer_types = {type(layer).__name__ for layer in model.critic.layers}
    assert "BatchNormalization" not in layer_types and "ExactLayerNormalization" in layer_types
    none = zoo.WGANGP(critic_norm="none", **KWARGS)
    assert not any("Normalization" in type(layer).__name__ for layer in none.critic.layers)


def test_bad_settings_give_one_clear_error():
    with pytest.raises(ValueError, match="n_critic=0 must be an integer >= 1"):
        zoo.WGANGP(n_critic=0, **KWARGS)
    with pytest.raises(ValueError, match="gp_weight"):
        zoo.WGANGP(gp_weight=-1.0, **KWARGS)
    with pytest.raises(ValueError, match="critic_norm='batch'"):
        zoo.WGANGP(critic_norm="batch", **KWARGS)
    with pytest.raises(ValueError, match="optimizer="):
        zoo.WGANGP(**KWARGS).compile(optimizer="adam")


def test_serialization_and_saving(tmp_path):
    model_helpers.run_serialization_test(zoo.WGANGP, {**KWARGS, "critic_filters": [8, 16], "n_critic": 2})
    model = zoo.WGANGP(n_critic=2, **KWARGS)
    model.compile_default()
    reloaded = model_helpers.run_saving_test(model, tmp_path)
    assert reloaded.n_critic == 2 and reloaded.training_steps == 0
    assert [type(o).__name__ for o in reloaded.optimizers] == ["Adam", "Adam"]


def test_the_registry_builds_it():
    from zoo import registry

    model = registry.build("wgan-gp", (8, 8, 1), generator_filters=(16, 8), kernel_size=3)
    assert type(model) is zoo.WGANGP and model.latent_dim == 100 and model.kind == "wgan-gp"
    images = ops.convert_to_numpy(model.sample(3, seed=0))
    assert images.shape == (3, 8, 8, 1) and images.min() >= 0 and images.max() <= 1


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export traces with TensorFlow")
def test_it_exports_to_onnx_like_the_dcgan(tmp_path, digits):
    import onnxruntime as ort

    from export import to_onnx

    model = zoo.WGANGP(n_critic=2, **KWARGS)
    model.compile_default()
    images, _ = digits
    model.fit(images[:32], batch_size=16, epochs=1, verbose=0)
    result = to_onnx(model, str(tmp_path / "wgan.onnx"))
    assert result.max_abs_error <= 1e-5 and result.metadata["model"] == "wgan-gp"
    z = model_helpers.fixed_latents(model)
    (got,) = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"]).run(None, {"z": z})
    np.testing.assert_allclose(got, model_helpers.deterministic_output(model, z), atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="float64 differences are TensorFlow-only here (JAX computes in float32 unless x64 is on); "
                           "JAX's and PyTorch's steps are compared with TensorFlow's in tests/test_backends.py")
def test_the_penalty_gradient_through_the_critics_layer_norm_matches_finite_differences():
    """The penalty differentiates the critic twice. Keras' own LayerNormalization gets the second
    derivative slightly wrong on TensorFlow (tf.nn.moments stops the gradient through the mean inside
    the variance: 4.6e-4 of the largest entry here); the critic's ExactLayerNormalization must match
    central differences in float64 (Keras' layer fails this test: 9e-4 relative)."""
    from zoo.wgan import ExactLayerNormalization

    keras.utils.set_random_seed(0)
    images = keras.Input((8, 8, 1), dtype="float64")
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", dtype="float64")(images)
    x = ExactLayerNormalization(axis=(1, 2, 3), dtype="float64")(x)
    x = keras.layers.Activation("tanh", dtype="float64")(x)  # smooth, so central differences are valid
    critic = keras.Model(images, keras.layers.Dense(1, dtype="float64")(keras.layers.Flatten(dtype="float64")(x)))
    real, fake, eps = (v.astype("float64") for v in _pair(n=4, seed=3))
    values = [ops.convert_to_numpy(v).astype("float32").astype("float64") for v in critic.trainable_variables]

    def penalty(kernel):
        weights = [ops.cast(kernel, "float64")] + [ops.convert_to_tensor(v, "float64") for v in values[1:]]
        f = lambda x: critic.stateless_call(weights, [], x)[0]  # noqa: E731
        return ops.mean(wgan_steps.gradient_penalty(f, real, fake, eps))[None]

    got = model_helpers.gradient(penalty, values[0]).ravel()
    h, want = 1e-5, np.zeros(values[0].size)
    for i in range(values[0].size):
        step = np.zeros(values[0].size)
        step[i] = h
        up = float(ops.convert_to_numpy(penalty((values[0].ravel() + step).reshape(values[0].shape)))[0])
        down = float(ops.convert_to_numpy(penalty((values[0].ravel() - step).reshape(values[0].shape)))[0])
        want[i] = (up - down) / (2 * h)
    assert np.max(np.abs(got - want)) <= 2e-5 * np.max(np.abs(want)), np.max(np.abs(got - want)) / np.max(np.abs(want))
    # And the layer computes what Keras' layer computes.
    plain = keras.layers.LayerNormalization(axis=(1, 2, 3))
    exact = ExactLayerNormalization(axis=(1, 2, 3))
    sample = np.random.default_rng(0).standard_normal((3, 4, 4, 4)).astype("float32")
    plain.build(sample.shape), exact.build(sample.shape)
    for layer in (plain, exact):
        layer.set_weights([np.linspace(0.5, 1.5, 64).reshape(4, 4, 4), np.linspace(-1, 1, 64).reshape(4, 4, 4)])
    np.testing.assert_allclose(ops.convert_to_numpy(exact(sample)), ops.convert_to_numpy(plain(sample)), atol=1e-5)
