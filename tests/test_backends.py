"""The backends agree: one training step from the same weights, data and noise
gives the same losses and weights on TensorFlow, JAX and PyTorch; a `.keras`
file written on any backend loads on any other with the same outputs; a model
trained on JAX or PyTorch exports to ONNX with the usual parity.

Each backend runs in its own process (Keras fixes its backend at import),
tests/backend_worker.py. Measured on the 2-core CPU machine: losses agree to
a relative 4e-7 (the VAE's small KL term, 0.008, to 2.6e-6 relative, 2e-8
absolute), weights after the step to 1.2e-6 (max-abs; Adam's first step moves
each weight by about the learning rate, 1e-3 or 2e-4), images of a reloaded
`.keras` to 1.2e-7. The bars below leave a margin over that.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import backend_worker

BACKENDS = ("tensorflow", "jax", "torch")
MODELS = tuple(backend_worker.KWARGS)
LOSS_RTOL, LOSS_ATOL = 2e-6, 1e-6
# The WGAN-GP logs its losses after critic updates made earlier in the same step (n_critic=2 Adam
# updates, each through the gradient penalty's second derivatives): its losses carry the weights'
# float32 differences (WEIGHT_ATOL) forward, and its g_loss can be near 0 (relative errors mean
# little there). Measured on four random starting points: g_loss off by 1.5e-6 to 2.7e-6 absolute
# (g_loss -1.18 to 0.06); the initial weights are now seeded (keras.utils.set_random_seed(0)).
# A wrong term in either backend's step moves the losses by 1e-3 or more.
LOSS_TOLERANCE_BY_MODEL = {"wgan-gp": (2e-5, 1e-5)}  # (rel, abs)
WEIGHT_ATOL = 1e-5
# Adam with beta_1 = 0 (the WGAN-GP's) steps each weight by about the learning rate (1e-4) times the
# sign of its gradient: where a gradient is ~0 (a layer-norm beta), float32 rounding picks the sign.
# Measured from the seeded start: 1.06e-5 at most (conv1_ln/beta).
WEIGHT_ATOL_BY_MODEL = {"wgan-gp": 5e-5}
RELOAD_ATOL = 1e-6
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _missing():
    return [b for b in BACKENDS if importlib.util.find_spec(b) is None]


def _worker(backend, *args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "tests.backend_worker", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{backend} worker {args[0]} failed:\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    if _missing():
        pytest.skip(f"Keras backends not installed: {', '.join(_missing())} (pip install -e '.[test]')")
    path = str(tmp_path_factory.mktemp("backends"))
    for backend in BACKENDS:  # TensorFlow first writes the shared initial weights
        _worker(backend, "step", path, *MODELS)
    for backend in BACKENDS:
        _worker(backend, "load", path)
    return path


def _step(workdir, backend, name):
    with np.load(os.path.join(workdir, f"{backend}-{name}.npz")) as f:
        return dict(f)


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_agrees_with_tensorflow(workdir, name, backend):
    want, got = _step(workdir, "tensorflow", name), _step(workdir, backend, name)
    assert sorted(got) == sorted(want)
    assert float(want["moved"]) > 1e-4 and float(got["moved"]) > 1e-4  # the step did update the weights
    losses = [k for k in want if k.startswith("loss:")]
    assert len(losses) >= 2
    for key in losses:
        rtol, atol = LOSS_TOLERANCE_BY_MODEL.get(name, (LOSS_RTOL, LOSS_ATOL))
        assert float(got[key]) == pytest.approx(float(want[key]), rel=rtol, abs=atol), key
    weights = [k for k in want if k.startswith("weight:")]
    errors = {k: float(np.max(np.abs(got[k] - want[k]))) for k in weights}
    assert max(errors.values()) <= WEIGHT_ATOL_BY_MODEL.get(name, WEIGHT_ATOL), max(errors.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("loader", BACKENDS)
@pytest.mark.parametrize("saver", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_keras_files_load_on_every_backend(workdir, name, saver, loader):
    own = np.load(os.path.join(workdir, f"{saver}-{name}-own.npy"))
    loaded = np.load(os.path.join(workdir, f"{loader}-loads-{saver}-{name}.keras.npy"))
    assert own.shape == loaded.shape and np.isfinite(own).all()
    np.testing.assert_allclose(loaded, own, rtol=0, atol=RELOAD_ATOL)


@pytest.mark.parametrize("trainer", ["jax", "torch"])
@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_a_model_trained_on_jax_or_torch_exports_to_onnx_with_parity(workdir, name, trainer, tmp_path):
    import keras
    import onnxruntime as ort

    from export import to_onnx

    model = keras.saving.load_model(os.path.join(workdir, f"{trainer}-{name}.keras"))
    assert model.training_steps == 1
    result = to_onnx(model, str(tmp_path / f"{name}.onnx"))
    assert result.max_abs_error <= 1e-5
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    z = backend_worker.latents(model.latent_dim)
    (images,) = session.run(None, {"z": z})
    # Against the images the model made on its own backend, before it was saved.
    np.testing.assert_allclose(images, np.load(os.path.join(workdir, f"{trainer}-{name}-own.npy")), rtol=0, atol=1e-5)

