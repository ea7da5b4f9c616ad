"""`zoo train` as a real subprocess: the run directory, the reloadable model,
TensorBoard event files read back, resume (also after Ctrl-C), and the
message of each bad input."""

import json
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo import data
from zoo_cli import main as cli

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "datasets" / "mnist"
TINY = ["--dataset", "digits", "--take", "64", "--batch-size", "16", "--epochs", "1"]
LOSSES = {"ae": "loss", "dae": "loss", "vae": "kl_loss", "dcgan": "g_loss"}


def zoo_command(*args):
    return [sys.executable, "-m", "zoo_cli", *map(str, args)]


def wait(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per model (and one on the shared MNIST when present), started together."""
    root = tmp_path_factory.mktemp("runs")
    jobs = {m: zoo_command("train", m, *TINY, "--out", root / m) for m in LOSSES}
    if SHARED_MNIST.is_dir():
        jobs["mnist"] = zoo_command("train", "vae", "--dataset", f"idx:{SHARED_MNIST}", "--take", "128",
                                    "--batch-size", "32", "--epochs", "1", "--out", root / "mnist")
    processes = {name: subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name, cmd in jobs.items()}
    return root, {name: wait(p) for name, p in processes.items()}


def read_run(run_dir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def steps(acc, tag):
    return [e.step for e in acc.Tensors(tag)]


@pytest.mark.parametrize("model", list(LOSSES))
def test_train_writes_a_complete_run(runs, model):
    root, results = runs
    result, run = results[model], root / model
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4/4" in result.stdout and f"{LOSSES[model]}: " in result.stdout  # Keras' progress bar
    assert f"wrote {run}" in result.stdout
    for name in ("model.keras", "config.json", "history.json", "samples.png", "checkpoint/training_metadata.json"):
        assert (run / name).is_file(), name

    reloaded = keras.saving.load_model(run / "model.keras")
    assert type(reloaded) is zoo.MODELS[model] and reloaded.image_shape == (8, 8, 1)
    assert keras.ops.convert_to_numpy(reloaded.sample(2, seed=0) if model in ("vae", "dcgan") else
                                      reloaded.decode(np.zeros((2, reloaded.latent_dim), "float32"))).shape == (2, 8, 8, 1)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model and config["dataset"] == "digits" and config["epochs"] == 1
    assert (config["batch_size"], config["take"], config["seed"], config["image_size"]) == (16, 64, 0, [8, 8])
    assert config["latent_dim"] == reloaded.latent_dim and config["model_config"]["latent_dim"] == reloaded.latent_dim
    assert config["binarize"] is (model == "vae")
    assert config["data"]["class_names"] == [str(d) for d in range(10)] and config["data"]["num_train"] == 64
    assert {"keras", "tensorflow", "numpy", "python", "genzoo"} <= set(config["versions"])
    if model == "dae":
        assert reloaded.noise_stddev == 0.3
    if model == "dcgan":
        assert config["d_learning_rate"] == config["g_learning_rate"] == 2e-4

    loss = LOSSES[model]
    train = read_run(run / "train")
    assert steps(train, f"batch_{loss}") == [1, 2, 3, 4] and steps(train, f"epoch_{loss}") == [0]
    rates = ["d_learning_rate", "g_learning_rate"] if model == "dcgan" else ["learning_rate"]
    for rate in rates:
        assert steps(train, f"batch_{rate}") == [1, 2, 3, 4] and steps(train, f"epoch_{rate}") == [0]
    assert steps(read_run(run / "validation"), f"epoch_{loss}") == [0]
    expected_images = {"samples", "interpolation"} | ({"reconstructions"} if model != "dcgan" else set())
    assert set(read_run(run / "images").Tags()["tensors"]) == expected_images
    has_projector = (run / "projector" / "projector_config.pbtxt").is_file()
    assert has_projector is (model != "dcgan")
    if has_projector:
        codes = np.loadtxt(run / "projector" / "codes.tsv", delimiter="\t")
        assert codes.shape == (64, reloaded.latent_dim)  # the held-out split, limited by --take


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/datasets/mnist is not on this machine")
def test_train_on_the_shared_mnist_idx_files(runs):
    root, results = runs
    assert results["mnist"].returncode == 0, results["mnist"].stderr[-3000:]
    config = json.loads((root / "mnist" / "config.json").read_text())
    assert config["data"]["image_shape"] == [28, 28, 1] and config["binarize"] is True
    assert keras.saving.load_model(root / "mnist" / "model.keras").image_shape == (28, 28, 1)
    labels = (root / "mnist" / "projector" / "metadata.tsv").read_text().splitlines()[1:4]
    assert labels == ["0\t7", "1\t2", "2\t1"]  # the first t10k digits


def test_resume_continues_epochs_optimizer_history_and_steps(runs, tmp_path):
    root, results = runs
    assert results["vae"].returncode == 0
    run = tmp_path / "vae"
    shutil.copytree(root / "vae", run)
    before = json.loads((run / "history.json").read_text())
    result = subprocess.run(zoo_command("train", "vae", "--epochs", "2", "--out", run, "--resume", "--log-every", "2"),
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 2/2" in result.stdout and "Epoch 1/2" not in result.stdout
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [0, 1]
    assert history["history"]["loss"][0] == before["history"]["loss"][0]
    # A restart from scratch (same seed) would repeat epoch 0's loss; a continued run improves on it.
    assert history["history"]["loss"][1] < history["history"]["loss"][0]
    assert json.loads((run / "checkpoint" / "training_metadata.json").read_text())["epoch"] == 2
    assert int(keras.saving.load_model(run / "model.keras").optimizer.iterations) == 8
    train = read_run(run / "train")
    # Steps continue after 4; the resumed run logs every 2nd step (--log-every may change on resume).
    assert steps(train, "batch_loss") == [1, 2, 3, 4, 6, 8] and steps(train, "epoch_loss") == [0, 1]
    assert steps(read_run(run / "images"), "samples") == [0, 1]
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 2 and config["log_every"] == 2
    assert config["resumed"][0]["from_epoch"] == 1 and config["resumed"][0]["changed"] == {"log_every": 2}


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_leaves_a_checkpoint_and_says_how_to_resume(tmp_path, signum, code, word):
    """SIGTERM (schedulers, `kill`) is handled as Ctrl-C is: the saved epoch stays, the message says how to go on."""
    run = tmp_path / "run"
    cmd = zoo_command("train", "vae", "--dataset", "digits", "--batch-size", "16", "--epochs", "200",
                      "--log-every", "0", "--no-validation", "--out", run)
    # A Ctrl-C reaches the child as it would from a terminal, even where this test runs as a
    # background job (whose children start with SIGINT ignored).
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if (run / "checkpoint" / "training_metadata.json").is_file():  # epoch 1 saved
            break
        time.sleep(0.2)
    time.sleep(0.5)  # into the next epoch
    process.send_signal(signum)
    result = wait(process, timeout=120)
    assert result.returncode == code, result.stderr[-3000:]
    done = json.loads((run / "checkpoint" / "training_metadata.json").read_text())["epoch"]
    assert 1 <= done < 200
    assert f"zoo train: {word}; {run} keeps" in result.stderr
    assert f"keeps the model and optimizer state after epoch {done} of 200" in result.stderr
    assert f"Continue with: zoo train vae --out {run} --epochs 200 --resume" in result.stderr
    assert "Traceback" not in result.stderr
    history = json.loads((run / "history.json").read_text())
    # RunCheckpoint saves an epoch just before BackupAndRestore does; a Ctrl-C between the two
    # leaves history.json one epoch ahead, which the resume below trains again and replaces.
    assert history["epoch"] in (list(range(done)), list(range(done + 1)))
    keras.saving.load_model(run / "model.keras")  # usable as it is
    resumed = subprocess.run(zoo_command("train", "vae", "--out", run, "--epochs", done + 1, "--resume"),
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "history.json").read_text())["epoch"] == list(range(done + 1))


# -- bad input: one message each, no traceback ---------------------------------------------


@pytest.mark.parametrize("flag, value, message", [
    ("--lr", "0", "learning_rate=0.0 must be a finite number > 0."),
    ("--lr", "nan", "learning_rate=nan must be a finite number > 0."),
    ("--g-lr=-1e-3", None, "g_learning_rate=-0.001 must be a finite number > 0."),
    ("--latent-dim", "0", "latent_dim=0 must be an integer >= 1."),
    ("--batch-size", "0", "batch_size=0 must be an integer >= 1."),
])
def test_invalid_hyperparameters_are_refused_not_replaced_by_defaults(capsys, tmp_path, flag, value, message):
    code, err = run_main(capsys, "train", "dcgan", "--out", str(tmp_path / "r"), *[a for a in (flag, value) if a])
    assert code == 2 and err.strip() == f"zoo train: error: {message}"
    assert not (tmp_path / "r").exists()


def test_resume_with_fewer_epochs_than_done_says_so_and_changes_nothing(tmp_path):
    run = tmp_path / "run"
    first = subprocess.run(zoo_command("train", "ae", "--dataset", "digits", "--epochs", "2", "--take", "64",
                                       "--batch-size", "32", "--no-validation", "--out", run),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    config = (run / "config.json").read_bytes()
    again = subprocess.run(zoo_command("train", "ae", "--out", run, "--epochs", "1", "--resume"),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2
    assert f"{run} has already trained 2 epochs, more than --epochs 1" in again.stderr
    assert (run / "config.json").read_bytes() == config


def run_main(capsys, *args):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_tfds_dataset_missing_offline_as_a_subprocess(tmp_path):
    result = subprocess.run(
        zoo_command("train", "vae", "--dataset", "fashion_mnist", "--no-download", "--data-dir", tmp_path,
                    "--out", tmp_path / "run"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"zoo train: error: the TFDS dataset 'fashion_mnist' is not in {tmp_path}")
    assert "'idx:DIR'" in message and "'folder:DIR'" in message and "--data-dir DIR" in message


def test_tfds_dataset_on_a_machine_without_internet(capsys, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(data, "_can_download", lambda: False)
    code, err = run_main(capsys, "train", "dcgan", "--dataset", "cifar10", "--data-dir", tmp_path, "--out", tmp_path / "r")
    assert code == 2
    assert "the TFDS dataset 'cifar10' is not in" in err and "cannot reach storage.googleapis.com" in err


@pytest.mark.parametrize("dataset, message", [
    ("mnistt", "zoo train: error: unknown dataset 'mnistt': it is not a TFDS dataset"),
    ("idx:{tmp}/nowhere", "zoo train: error: idx:{tmp}/nowhere: no such directory."),
    ("folder:{tmp}/nowhere", "zoo train: error: folder:{tmp}/nowhere: no such directory."),
    ("folder:{tmp}/empty", "zoo train: error: folder:{tmp}/empty holds no image files"),
    ("idx:{tmp}/empty", "zoo train: error: idx:{tmp}/empty has no train images file"),
])
def test_bad_dataset_messages(capsys, tmp_path, dataset, message):
    (tmp_path / "empty").mkdir()
    code, err = run_main(capsys, "train", "ae", "--dataset", dataset.format(tmp=tmp_path), "--out", tmp_path / "run")
    assert code == 2 and message.format(tmp=tmp_path) in err
    assert not (tmp_path / "run" / "model.keras").exists()


def test_corrupt_images_are_skipped_with_a_count(capsys, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "00_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = run_main(capsys, "train", "ae", "--dataset", f"folder:{tmp_path}", "--epochs", "1",
                             "--batch-size", "4", "--out", tmp_path / "run")
    assert code == 0, err
    assert any("skipped 1 unreadable image file(s)" in str(w.message) and "00_corrupt.png" in str(w.message)
               for w in caught)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["skipped_files"] == 1


def test_image_size_the_models_cannot_take(capsys, tmp_path):
    code, err = run_main(capsys, "train", "vae", "--dataset", "digits", "--image-size", "30", "--out", tmp_path)
    assert code == 2 and "gives 30x30 images, but the models need a height and width divisible by 4" in err
    assert "--image-size 28x28" in err
    with pytest.raises(SystemExit):
        cli.main(["train", "vae", "--image-size", "big", "--out", str(tmp_path)])
    assert "'big' is not a size" in capsys.readouterr().err


def test_existing_runs_and_resume_mistakes(capsys, runs, tmp_path):
    root, results = runs
    assert results["ae"].returncode == 0
    code, err = run_main(capsys, "train", "ae", *TINY, "--out", root / "ae")
    assert code == 2 and "already holds a run (1 of 1 epochs of ae); pass --resume to continue it, --overwrite" in err
    code, err = run_main(capsys, "train", "ae", "--epochs", "2", "--latent-dim", "5", "--resume", "--out", root / "ae")
    assert code == 2 and "these differ: latent_dim=5 (saved: 16)" in err
    code, err = run_main(capsys, "train", "vae", "--resume", "--out", root / "ae")
    assert code == 2 and "holds a 'ae' run, not 'vae'" in err
    code, err = run_main(capsys, "train", "vae", "--resume", "--out", tmp_path / "nothing")
    assert code == 2 and "holds no run to resume (no config.json)" in err
    lost = tmp_path / "lost"
    shutil.copytree(root / "ae", lost, ignore=shutil.ignore_patterns("checkpoint"))
    code, err = run_main(capsys, "train", "ae", "--epochs", "2", "--resume", "--out", lost)
    assert code == 2 and "has a model.keras but no checkpoint/ to resume from" in err


def test_train_in_mixed_bfloat16_keeps_float32_weights_and_losses(tmp_path):
    """--precision mixed_bfloat16 computes in bfloat16 but keeps weights and losses in float32."""
    import json

    import keras

    from zoo import training

    keras.mixed_precision.set_global_policy("float32")
    try:
        model = training.train("vae", dataset="digits", epochs=1, take=64, batch_size=32, out=str(tmp_path / "run"),
                               precision="mixed_bfloat16", validation=False, verbose=0)
        assert keras.mixed_precision.global_policy().name == "float32"  # the caller's policy is back
        assert model.decoder.get_layer("deconv0").compute_dtype == "bfloat16"
        assert all(w.dtype == "float32" for w in model.weights if "seed" not in w.path)
        assert model.decoder.output.dtype == "float32"
        history = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
        assert all(v == v for v in history["loss"])  # finite, not NaN
        assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
