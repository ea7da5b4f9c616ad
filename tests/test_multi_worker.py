"""Training across machines: tf.distribute.MultiWorkerMirroredStrategy with 2 worker processes on
127.0.0.1 (ports chosen free at test time, TF_CONFIG per process), real collectives between them.

- In Python, the Keras way: 2 workers of one CPU device each train the AE, the VAE and the DCGAN
  (synchronised batch norm) 10 steps of global batch 32 and end with the weights of one device on
  the same batches; the workers end identical. Equality to one device also shows the sharding:
  each worker took its own half of every global batch.
- `zoo train --distribute multi-worker`: the chief writes the whole run directory, the other
  worker nothing; a worker killed (SIGKILL) in the middle of an epoch stops the chief with one line,
  and the restarted cluster resumes from the last checkpoint to a complete history.
- Mistakes in TF_CONFIG get one line.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_distribute import max_weight_difference, train

REPO = Path(__file__).resolve().parents[1]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_env(ports, index):
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    return {**QUIET, "TF_CONFIG": json.dumps(tf_config)}


def start_workers(argv_of, ports, **kwargs):
    """One process per worker; argv_of(index) -> its command line."""
    return [subprocess.Popen(argv_of(i), cwd=REPO, env=cluster_env(ports, i), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **kwargs) for i in range(len(ports))]


def finish(processes, timeout=300):
    results = []
    for p in processes:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in processes:
                q.kill()
            raise
        results.append((p.returncode, out, err))
    return results


@pytest.mark.parametrize("model, flags, tolerance", [
    ("ae", (), 1e-5), ("vae", (), 1e-4), ("dcgan", ("--sync",), 1e-4), ("wgan-gp", ("--sync",), 2e-4),
], ids=["ae", "vae", "dcgan-sync-bn", "wgan-gp-sync-bn"])
def test_two_workers_give_the_weights_of_one_device(tmp_path, model, flags, tolerance):
    ports = free_ports(2)
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    workers = start_workers(lambda i: [sys.executable, "-m", "tests.distribute_worker", outs[i], model, "workers",
                                       *flags], ports)
    one = train(tmp_path, "tensorflow", model, 1, *flags)
    for code, _, err in finish(workers):
        assert code == 0, err[-3000:]
    first, second = (np.load(out) for out in outs)
    assert max_weight_difference(first, second) == 0.0  # the workers stay in sync
    assert max_weight_difference(one, first, "i", "i") == 0.0  # the same start
    assert max_weight_difference(one, one, "w", "i") > 0.05
    np.testing.assert_allclose(first["losses"], one["losses"], rtol=1e-5)
    difference = max_weight_difference(one, first)
    print(f"multi-worker {model}{''.join(flags)}: 2 workers vs 1 device, max-abs weight difference {difference:.2g}")
    assert difference <= tolerance


# -- zoo train --distribute multi-worker ---------------------------------------------------------------------------

def zoo_train(out, *args):
    return [sys.executable, "-m", "zoo_cli", "train", "ae", "--dataset", "digits", "--batch-size", "32",
            "--out", str(out), "--distribute", "multi-worker", *map(str, args)]


def files_of(run):
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


def test_the_chief_writes_the_run_directory_and_the_other_worker_nothing(tmp_path):
    run = tmp_path / "run"
    workers = start_workers(lambda i: zoo_train(run, "--epochs", "2", "--take", "256"), free_ports(2))
    (chief_code, chief_out, chief_err), (code, out, err) = finish(workers)
    assert chief_code == 0, chief_err[-3000:]
    assert code == 0, err[-3000:]
    assert out.strip().splitlines()[-1] == f"worker 1 of the cluster: done (the chief wrote {run})"
    config = json.loads((run / "config.json").read_text())
    assert (config["distribute"], config["replicas"], config["workers"], config["seed"]) == ("multi-worker", 2, 2, 0)
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [0, 1] and len(history["history"]["loss"]) == 2
    for name in ("model.keras", "samples.png", "checkpoint/latest.weights.h5", "checkpoint/training_metadata.json"):
        assert (run / name).is_file(), name
    # TensorBoard names its event files after the writing process: all are the chief's.
    events = [p.name for p in run.rglob("events.out.tfevents.*")]
    assert events and {name.split(".")[-3] for name in events} == {str(workers[0].pid)}
    # Nothing beyond what a run directory holds (no worker's files, no leftovers).
    assert all(name.split("/")[0] in {"train", "validation", "images", "projector", "checkpoint", "model.keras",
                                      "samples.png", "config.json", "history.json"} for name in files_of(run))


def _wait_for_epochs(run, count, processes, timeout=240):
    """Wait until the chief's history records `count` epochs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = run / "history.json"
        if history.exists() and len(json.loads(history.read_text()).get("epoch", [])) >= count:
            return
        assert all(p.poll() is None for p in processes), "a worker ended early"
        time.sleep(0.05)
    raise AssertionError(f"no {count} epochs in {timeout} s")


def test_a_killed_worker_stops_the_chief_and_the_restarted_cluster_resumes(tmp_path):
    run = tmp_path / "run"
    epochs = 4
    workers = start_workers(lambda i: zoo_train(run, "--epochs", epochs, "--no-validation"), free_ports(2))
    _wait_for_epochs(run, 1, workers)
    time.sleep(1.0)  # into epoch 2 (an epoch of 56 steps takes several seconds here)
    workers[1].send_signal(signal.SIGKILL)
    (code, _, err), (killed, _, _) = finish(workers, timeout=180)
    assert killed == -signal.SIGKILL
    assert code == 2, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("zoo train: error: a worker of the cluster stopped (")
    kept = json.loads((run / "history.json").read_text())["epoch"]
    assert kept and len(kept) < epochs, kept  # stopped in the middle, after at least one epoch
    assert f"keeps epoch {len(kept)})" in line and line.endswith("--distribute multi-worker --resume")

    again = start_workers(lambda i: zoo_train(run, "--epochs", epochs, "--no-validation", "--resume"), free_ports(2))
    for code, _, err in finish(again):
        assert code == 0, err[-3000:]
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == list(range(epochs))  # every epoch once: nothing lost, none duplicated
    assert all(v is not None for v in history["history"]["loss"])
    config = json.loads((run / "config.json").read_text())
    assert [r["from_epoch"] for r in config["resumed"]] == [len(kept)]


@pytest.mark.parametrize("tf_config, message", [
    ("", "--distribute multi-worker reads the cluster from the TF_CONFIG environment variable, which is not set;"),
    ("{cluster", "TF_CONFIG is not JSON ("),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG's task index 2 is not one of the cluster's 2 worker addresses (0 to 1); give each process its own "
     "index."),
    ('{"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG's cluster 'worker' must be a list of \"host:port\" strings, not ['127.0.0.1']."),
    ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG has no "cluster" with a "worker" (or "chief") list of host:port addresses;'),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "evaluator"}}', 'TF_CONFIG\'s "task" must name this process:'),
], ids=["unset", "not-json", "index", "address", "no-workers", "task-type"])
def test_tf_config_mistakes_get_one_line(tf_config, message):
    from zoo import replicas

    with pytest.raises(ValueError) as err:
        replicas.cluster_role({"TF_CONFIG": tf_config})
    assert str(err.value).startswith(message)


def test_a_cluster_role_names_the_chief():
    from zoo import replicas

    workers = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": %d}}'
    assert replicas.cluster_role({"TF_CONFIG": workers % 0}).is_chief
    assert not replicas.cluster_role({"TF_CONFIG": workers % 1}).is_chief
    with_chief = '{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "%s", "index": 0}}'
    assert replicas.cluster_role({"TF_CONFIG": with_chief % "chief"}).is_chief
    role = replicas.cluster_role({"TF_CONFIG": with_chief % "worker"})
    assert not role.is_chief and role.workers == 2


def test_the_cli_refuses_a_bad_tf_config_before_touching_the_run(tmp_path):
    env = {**QUIET, "TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}'}
    done = subprocess.run(zoo_train(tmp_path / "run", "--epochs", "1"), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("zoo train: error: TF_CONFIG's task index 3 is not one of")
    assert not (tmp_path / "run").exists()
