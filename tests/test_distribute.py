"""Data-parallel training equals one device: tf.distribute.MirroredStrategy over 2 logical CPU
devices, and keras.distribution.DataParallel over 2 JAX CPU devices, against 1 device, from the
same initial weights on the same data (real strategies in subprocesses: devices are fixed when
a backend starts). And `zoo train --distribute` with its refusals, through the real CLI.

Tolerance, max-abs on every weight after 10 steps (the weights move by more than 0.05): 1e-5 for the
AE, 1e-4 for the VAE and the DCGAN with synchronised batch norm, 2e-4 for the WGAN-GP (measured 6.8e-5
under MirroredStrategy: Adam with beta_1=0 turns a rounding difference in a near-zero gradient into a
step of up to the learning rate; its losses agree to 1e-5 relative over the 10 steps). The replicas' gradients are summed
in another order than one device's batch sum, so the runs agree to float32 rounding, not bits, and
the rounding grows with the steps (the measured figures are printed: pytest -s)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo_cli.backends import xla_flags_with_host_devices

REPO = Path(__file__).resolve().parents[1]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def train(tmp_path, backend, model, replicas, *flags):
    out = tmp_path / f"{backend}-{model}-{replicas}{''.join(flags)}.npz"
    env = {**QUIET, "KERAS_BACKEND": backend}
    if backend == "jax":
        env["XLA_FLAGS"] = xla_flags_with_host_devices(env.get("XLA_FLAGS"), replicas)
    done = subprocess.run([sys.executable, "-m", "tests.distribute_worker", out, model, str(replicas), *flags],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(out)


def max_weight_difference(a, b, a_prefix="w", b_prefix="w"):
    """max |a.<a_prefix>k - b.<b_prefix>k| over every weight k (w: after training, i: before)."""
    names = sorted(n[1:] for n in a.files if n.startswith("w"))
    assert names and names == sorted(n[1:] for n in b.files if n.startswith("w"))
    return max(float(np.max(np.abs(a[a_prefix + k] - b[b_prefix + k]))) for k in names)


@pytest.mark.parametrize("backend, model, flags, tolerance", [
    ("tensorflow", "ae", (), 1e-5), ("tensorflow", "vae", (), 1e-4), ("tensorflow", "dcgan", ("--sync",), 1e-4),
    ("tensorflow", "wgan-gp", ("--sync",), 2e-4), ("jax", "ae", (), 1e-5), ("jax", "wgan-gp", (), 1e-4),
], ids=["mirrored-ae", "mirrored-vae", "mirrored-dcgan-sync-bn", "mirrored-wgan-gp-sync-bn", "jax-data-parallel-ae",
        "jax-data-parallel-wgan-gp"])
def test_two_replicas_give_the_weights_of_one_device(tmp_path, backend, model, flags, tolerance):
    one = train(tmp_path, backend, model, 1, *flags)
    two = train(tmp_path, backend, model, 2, *flags)
    assert max_weight_difference(one, two, "i", "i") == 0.0  # the same start
    # The training moved the weights orders of magnitude more than the tolerance (a missing division by
    # the replica count, steps twice as large, moved the AE 7.8 away), so equality means something.
    assert max_weight_difference(one, one, "w", "i") > 0.05
    assert len(one["losses"]) == len(two["losses"]) == 10
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    difference = max_weight_difference(one, two)
    print(f"{backend} {model}{''.join(flags)}: 2 replicas vs 1 device, max-abs weight difference {difference:.2g}")
    assert difference <= tolerance


def test_per_replica_batch_norm_trains_close_to_one_device(tmp_path):
    """Without synchronisation each replica normalises its own half batch: a different (and common)
    DCGAN, whose losses follow one device's within noise."""
    one = train(tmp_path, "tensorflow", "dcgan", 1)
    two = train(tmp_path, "tensorflow", "dcgan", 2)
    assert np.all(np.isfinite(two["losses"]))
    assert 0.0 < max_weight_difference(one, two) < 0.1
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=0.1)


# -- zoo train --distribute ---------------------------------------------------------------------------------------

def zoo_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "zoo_cli", *map(str, args)], cwd=REPO, env=env or QUIET,
                          capture_output=True, text=True, timeout=300)


TINY = ["--dataset", "digits", "--epochs", "1", "--take", "128", "--batch-size", "32", "--no-validation"]


def test_zoo_train_mirrored_records_the_replicas_and_refuses_to_resume_on_other_devices(tmp_path):
    run = tmp_path / "run"
    done = zoo_cli("train", "dcgan", *TINY, "--out", run, "--distribute", "mirrored", "--cpu-replicas", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["distribute"] == "mirrored" and config["replicas"] == 2
    assert config["model_config"]["sync_batch_norm"] is True
    assert json.loads((run / "history.json").read_text())["epoch"] == [0]
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = zoo_cli("train", "dcgan", "--out", run, "--epochs", "2", "--resume", "--cpu-replicas", "1",
                    "--distribute", "mirrored")
    assert again.returncode == 2
    assert "trained on 2 replicas and would resume on 1" in again.stderr.strip().splitlines()[-1]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("args, message", [
    (["--distribute", "data-parallel"], "--distribute data-parallel runs on the jax backend, not tensorflow; "
                                        "pass --backend jax, or use --distribute mirrored on tensorflow."),
    (["--distribute", "mirrored", "--backend", "torch"], "--distribute mirrored runs on the tensorflow backend, "
                                                         "not torch; pass --backend tensorflow (torch has no "
                                                         "distribution in Keras)."),
    (["--distribute", "mirrored", "--cpu-replicas", "2", "--batch-size", "33"],
     "--batch-size 33 does not divide over 2 replicas; use a multiple of 2, e.g. --batch-size 32."),
    (["--cpu-replicas", "2"], "--cpu-replicas 2: give a number >= 1, with --distribute."),
], ids=["jax-only", "no-torch", "indivisible", "replicas-alone"])
def test_distribution_mistakes_get_one_line(tmp_path, args, message):
    done = zoo_cli("train", "ae", "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "run", *args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"zoo train: error: {message}"
    assert not (tmp_path / "run" / "config.json").exists()
