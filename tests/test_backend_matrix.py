"""The backend matrix of CI: the model, loss, saving, evaluation, latent and
callback tests, run again under JAX and under PyTorch (CPU).

Keras fixes its backend when it is imported, so each backend's run is its own
pytest process with KERAS_BACKEND set; this test fails with that run's
report when any of its tests fails. Tests that need TensorFlow itself
(export traces with it) run in the main, TensorFlow, session only.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
FILES = ["test_models.py", "test_losses.py", "test_evaluate.py", "test_latent.py", "test_samplers.py",
         "test_callbacks.py", "test_metrics.py", "test_inversion.py", "test_wgan.py"]


INNER = os.environ.get("GENZOO_BACKEND_MATRIX") == "inner"


def _suite_passes_under(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[test]' installs it)")
    env = {**os.environ, "KERAS_BACKEND": backend, "GENZOO_BACKEND_MATRIX": "inner", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        # -n 0: one process (the outer suite's other worker already uses the second core).
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *(f"tests/{f}" for f in FILES)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"{backend}: {summary}")
    assert done.returncode == 0, f"under KERAS_BACKEND={backend}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    assert " passed" in summary


# One class per backend: pytest-xdist (--dist loadscope) hands each class to a worker of its own,
# so the two runs can go side by side; conftest.py starts them first.
@pytest.mark.skipif(INNER, reason="already inside a matrix run")
class TestUnderJax:
    def test_the_suite_passes_under_jax(self):
        _suite_passes_under("jax")


@pytest.mark.skipif(INNER, reason="already inside a matrix run")
class TestUnderTorch:
    def test_the_suite_passes_under_torch(self):
        _suite_passes_under("torch")
