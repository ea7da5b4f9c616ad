"""The promises that keep a user's data: `zoo train --overwrite` deletes only
what a run wrote (and nothing at all when a run folder holds a file of the
user's), `zoo generate` never replaces a directory with its PNG, and a
training that diverges is stopped and never saved over a good model or
checkpoint. Real subprocesses of the CLI on real files; no mocks."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo import callbacks

REPO = Path(__file__).resolve().parents[1]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = ["--dataset", "digits", "--epochs", "1", "--take", "128", "--batch-size", "32", "--no-validation"]


def zoo_command(*args):
    return [sys.executable, "-m", "zoo_cli", *map(str, args)]


def zoo_cli(*args, timeout=300):
    return subprocess.run(zoo_command(*args), capture_output=True, text=True, cwd=REPO, env=QUIET, timeout=timeout)


def error_line(done, command):
    """The one error line of a failed `zoo COMMAND` (TensorFlow may log its own lines before it)."""
    errors = [line for line in done.stderr.splitlines() if line.startswith(f"zoo {command}:")]
    assert len(errors) == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == errors[0], done.stderr  # the last word is ours
    return errors[0]


def snapshot(directory):
    """{relative path: bytes (files) or None (folders)} of everything under `directory`."""
    directory = Path(directory)
    return {str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes() for p in directory.rglob("*")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE run (to overwrite) and a tiny DCGAN run exported to ONNX, trained side by side."""
    root = tmp_path_factory.mktemp("trained")
    jobs = {
        "vae": zoo_command("train", "vae", *TINY, "--lr", "0.002", "--out", root / "vae"),
        "dcgan": zoo_command("train", "dcgan", *TINY, "--out", root / "dcgan"),
    }
    processes = {name: subprocess.Popen(cmd, cwd=REPO, env=QUIET, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True) for name, cmd in jobs.items()}
    for name, process in processes.items():
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"zoo train {name} failed:\n{err}"
    exported = zoo_cli("export", root / "dcgan", "--format", "onnx")
    assert exported.returncode == 0, exported.stderr
    onnx_file = root / "dcgan" / "export" / "dcgan.onnx"
    assert onnx_file.is_file()
    return {"vae": root / "vae", "dcgan": root / "dcgan", "onnx": onnx_file}


@pytest.fixture
def old_run(trained, tmp_path):
    """A private copy of the trained VAE run, with the files a user must get back checked to be there."""
    run = tmp_path / "run"
    shutil.copytree(trained["vae"], run)
    for name in ("model.keras", "config.json", "history.json", "samples.png", "checkpoint/latest.weights.h5"):
        assert (run / name).is_file(), name
    assert list((run / "train").glob("events.out.tfevents.*"))
    return run


# 1. --overwrite deletes only what a run wrote -------------------------------------------------------------------

@pytest.mark.parametrize("users_file", ["train/notes.txt", "images/holiday.jpg", "projector/mine/points.tsv",
                                        "checkpoint/best.txt", "validation/labels.csv"])
def test_overwrite_refuses_and_deletes_nothing_when_a_run_folder_holds_a_users_file(old_run, users_file):
    (old_run / users_file).parent.mkdir(parents=True, exist_ok=True)
    (old_run / users_file).write_bytes(b"the user's own bytes\n")
    before = snapshot(old_run)

    done = zoo_cli("train", "vae", *TINY, "--out", old_run, "--overwrite")

    assert done.returncode == 2, done.stderr
    line = error_line(done, "train")
    assert line.startswith("zoo train: error: --overwrite replaces only what `zoo train` wrote")
    assert str(old_run / users_file) in line and "nothing was deleted" in line
    # Not one file deleted, changed or added: the user's file, and the old run with it.
    assert snapshot(old_run) == before
    assert (old_run / users_file).read_bytes() == b"the user's own bytes\n"


def test_overwrite_replaces_only_the_old_run(old_run):
    readme = old_run / "README.txt"
    readme.write_bytes(b"notes on this experiment\n")
    old_config = (old_run / "config.json").read_bytes()
    old_events = {p.relative_to(old_run) for p in old_run.glob("*/events.out.tfevents.*")}
    assert b'"learning_rate": 0.002' in old_config and old_events

    done = zoo_cli("train", "vae", *TINY, "--out", old_run, "--overwrite")

    assert done.returncode == 0, done.stderr
    new_config = (old_run / "config.json").read_bytes()
    assert new_config != old_config and b'"learning_rate": 0.001' in new_config  # the new run's settings
    new_events = {p.relative_to(old_run) for p in old_run.glob("*/events.out.tfevents.*")}
    assert new_events and not old_events & new_events  # the old TensorBoard logs are gone, not appended to
    assert (old_run / "model.keras").is_file() and (old_run / "samples.png").is_file()
    assert readme.read_bytes() == b"notes on this experiment\n"  # a file no run writes stays


# 2. zoo generate never replaces a directory ---------------------------------------------------------------------

def test_generate_overwrite_never_replaces_a_directory(trained, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"not really a jpeg\n")

    done = zoo_cli("generate", trained["onnx"], "-n", "4", "-o", photos, "--overwrite")

    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"zoo generate: error: {photos} is a directory; genzoo writes a file there only in place of a file. "
        "Give a file name instead."
    ]
    assert photos.is_dir() and [p.name for p in photos.iterdir()] == ["holiday.jpg"]
    assert (photos / "holiday.jpg").read_bytes() == b"not really a jpeg\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no temporary file left beside it


@pytest.mark.parametrize("name", ["grid.png", "samples.npy"])
def test_generate_overwrite_replaces_only_its_own_file(trained, tmp_path, name):
    """The other side of the test above: --overwrite replaces a file genzoo wrote (its mark: a PNG
    text chunk, a comment in the .npy header), and never the user's file of the same name."""
    from PIL import Image

    out = tmp_path / name
    users = np.zeros((4, 8, 8, 1), np.float32)
    if name.endswith(".png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(out)  # a real PNG, not genzoo's
    else:
        np.save(out, users)
    before = out.read_bytes()

    for extra in ([], ["--overwrite"]):
        refused = zoo_cli("generate", trained["onnx"], "-n", "4", "-o", out, *extra)
        assert refused.returncode == 2
        assert ("already exists" if not extra else "was not written by genzoo") in error_line(refused, "generate")
        assert out.read_bytes() == before

    out.unlink()
    first = zoo_cli("generate", trained["onnx"], "-n", "4", "-o", out)
    assert first.returncode == 0, first.stderr
    again = zoo_cli("generate", trained["onnx"], "-n", "4", "-o", out, "--seed", "1", "--overwrite")
    assert again.returncode == 0, again.stderr
    if name.endswith(".png"):
        with Image.open(out) as image:
            assert image.format == "PNG" and image.text.get("Software") == "genzoo"
    else:
        assert np.load(out).shape == (4, 8, 8, 1) and np.load(out, mmap_mode="r").dtype == np.float32
        assert not np.array_equal(np.load(out), users)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# 3. A diverging training is stopped and never saved -------------------------------------------------------------

def test_a_diverging_cli_run_stops_with_one_line_and_saves_no_model(tmp_path):
    out = tmp_path / "run"

    # A learning rate of NaN is refused up front (tests/test_train_cli.py); 1e30 is a number, and diverges.
    done = zoo_cli("train", "vae", *TINY, "--lr", "1e30", "--out", out)

    assert done.returncode == 2, done.stderr
    line = error_line(done, "train")
    # The first update throws the weights out, so a step soon after has the first non-finite loss.
    assert line.startswith("zoo train: error: training diverged: ")
    assert "at epoch 1, step " in line and "were not saved" in line and "keeps no trained epoch" in line
    assert "it was 1e+30; try a smaller --lr" in line
    assert not (out / "model.keras").exists()
    assert not (out / "history.json").exists()
    assert not (out / "samples.png").exists()
    assert not (out / "checkpoint").exists()  # nothing to resume from but the initial weights
    # config.json stays (written before the first step), so the directory is still known as a run.
    assert (out / "config.json").is_file()


def _good_run(run_dir, images):
    """A tiny VAE fit one epoch with the run checkpoints; returns (model, the callbacks' files' bytes)."""
    model = zoo.VAE((8, 8, 1), 2, filters=(4,), hidden_dim=8, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(images, epochs=1, batch_size=32, shuffle=False, verbose=0, callbacks=_savers(run_dir))
    saved = snapshot(run_dir)
    for name in ("model.keras", "history.json", "checkpoint/latest.weights.h5", "checkpoint/training_metadata.json"):
        assert saved.get(name), name
    assert callbacks.weights_are_finite(model)
    return model, saved


def _savers(run_dir):
    # delete_checkpoint=False as `zoo train` does: Keras' default deletes the backup when fit() ends.
    return [callbacks.RunCheckpoint(run_dir),
            callbacks.BackupAndRestore(run_dir / "checkpoint", delete_checkpoint=False)]


def _poisoned(images):
    bad = images.copy()
    bad[0, 3, 3, 0] = np.nan  # one pixel, in the first batch
    return bad


def _fit_past_the_input_check(model, *args, **kwargs):
    """Keras' own fit: NaN reaches the model as it could from a generator or an overflowing loss
    (genzoo's fit refuses NaN images up front: test_fit_refuses_images_that_are_not_finite_or_in_range)."""
    return keras.Model.fit(model, *args, **kwargs)


def test_stop_on_non_finite_stops_where_it_diverged_and_nothing_is_saved(tmp_path, digits):
    images = digits[0][:128]
    model, saved = _good_run(tmp_path, images)
    stopper = callbacks.StopOnNonFinite()

    # BackupAndRestore restores epoch 1, so this fit trains the second epoch, on the poisoned images.
    _fit_past_the_input_check(model, _poisoned(images), epochs=2, batch_size=32, shuffle=False, verbose=0,
                              callbacks=[stopper, *_savers(tmp_path)])

    assert stopper.stopped_at is not None
    epoch, step, name, value = stopper.stopped_at
    assert (epoch, step) == (1, 0)
    assert name in ("loss", "kl_loss", "reconstruction_loss") and math.isnan(value)
    assert not callbacks.weights_are_finite(model)  # it did diverge
    assert snapshot(tmp_path) == saved  # model.keras, history.json and the checkpoint, byte for byte


def test_the_savers_alone_never_save_non_finite_weights(tmp_path, digits):
    """Without StopOnNonFinite, fit runs on through NaN epochs, and still nothing good is overwritten."""
    images = digits[0][:128]
    model, saved = _good_run(tmp_path, images)

    history = _fit_past_the_input_check(model, _poisoned(images), epochs=3, batch_size=32, shuffle=False,
                                        verbose=0, callbacks=_savers(tmp_path))

    assert len(history.history["loss"]) == 2 and all(math.isnan(v) for v in history.history["loss"])
    assert not callbacks.weights_are_finite(model)
    assert snapshot(tmp_path) == saved
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert callbacks.weights_are_finite(restored)


def test_a_diverged_fit_keeps_the_checkpoint_even_when_told_to_delete_it(tmp_path, digits):
    """Keras' BackupAndRestore deletes its folder when fit ends (delete_checkpoint=True, the
    default); after a diverged fit that folder is the only good state to resume from, so it stays."""
    images = digits[0][:128]
    model, saved = _good_run(tmp_path, images)
    _fit_past_the_input_check(model, _poisoned(images), epochs=2, batch_size=32, shuffle=False, verbose=0,
                              callbacks=[callbacks.StopOnNonFinite(), callbacks.BackupAndRestore(tmp_path / "checkpoint")])
    assert not callbacks.weights_are_finite(model)
    assert snapshot(tmp_path) == saved
    # And a fit that ends well does delete it, as Keras documents.
    good = zoo.VAE((8, 8, 1), 2, filters=(4,), hidden_dim=8, seed=0)
    good.compile(optimizer=keras.optimizers.Adam(1e-3))
    good.fit(images, epochs=2, batch_size=32, verbose=0, callbacks=[callbacks.BackupAndRestore(tmp_path / "checkpoint")])
    assert not (tmp_path / "checkpoint").exists()


# 4. One process per run directory; leftovers of a killed save; paths from files -----------------------------

def test_a_second_training_on_the_same_directory_is_refused_while_the_first_runs(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    first = subprocess.Popen(zoo_command("train", "vae", "--dataset", "digits", "--epochs", "200", "--batch-size", "16",
                                         "--no-validation", "--log-every", "0", "--out", out),
                             cwd=REPO, env=QUIET, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (out / "config.json").exists() and first.poll() is None:
            time.sleep(0.2)
        assert first.poll() is None, first.communicate()[1][-3000:]
        before = (out / "config.json").read_bytes()
        for extra in (["--resume"], ["--overwrite"]):
            second = zoo_cli("train", "vae", "--dataset", "digits", "--epochs", "200", "--batch-size", "16",
                             "--no-validation", "--log-every", "0", "--out", out, *extra)
            assert second.returncode == 2
            line = error_line(second, "train")
            assert f"{out} is in use by another `zoo train` (process {first.pid})" in line
        assert (out / "config.json").read_bytes() == before and first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    assert not (out / ".lock").exists()


def test_temporary_files_of_a_killed_save_are_cleaned_on_the_next_start(old_run):
    litter = [old_run / ".tmp-abc123.keras", old_run / "checkpoint" / ".tmp-x.json"]
    for path in litter:
        path.write_bytes(b"half a save")
    done = zoo_cli("train", "vae", "--out", old_run, "--epochs", "2", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not any(path.exists() for path in litter)


def test_export_names_its_files_from_the_model_never_from_config_json(trained, tmp_path):

    run = tmp_path / "run"
    shutil.copytree(trained["dcgan"], run)
    shutil.rmtree(run / "export")
    config = json.loads((run / "config.json").read_text())
    config["model"] = "../../../escaped"
    (run / "config.json").write_text(json.dumps(config))
    done = zoo_cli("export", run, "--format", "onnx")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(run / "export")) == ["dcgan.onnx", "export.json"]
    assert not list(tmp_path.parent.rglob("escaped*"))


# 5. A resumed run is the run it continues ------------------------------------------------------------------------

def _weights(run_dir):
    model = keras.saving.load_model(Path(run_dir) / "model.keras")
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


@pytest.mark.parametrize("model, backend", [("vae", "tensorflow"), ("dcgan", "jax"), ("dae", "torch")])
def test_a_run_killed_mid_epoch_and_resumed_ends_bit_equal_to_the_uninterrupted_run(tmp_path, model, backend):
    """Data order, dynamic binarisation and the model's sampling noise continue where they stopped.

    The run is killed with SIGKILL (no handler runs) while it trains a later epoch; `--resume`
    goes back to the last saved epoch and must then see the same batches and draw the same noise
    as the run that was never stopped: every weight equal, bit for bit."""
    import signal
    import time

    epochs = 4
    # No KERAS_BACKEND: the resume below must pick the run's own backend by itself.
    env = {key: value for key, value in QUIET.items() if key != "KERAS_BACKEND"}
    args = ["train", model, "--backend", backend, "--dataset", "digits", "--take", "192", "--batch-size", "8",
            "--no-validation", "--log-every", "0", "--seed", "7", "--epochs", epochs]
    straight = subprocess.Popen(zoo_command(*args, "--out", tmp_path / "straight"), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cut = tmp_path / "cut"
    victim = subprocess.Popen(zoo_command(*args, "--out", cut), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None and not (cut / "checkpoint" / "training_metadata.json").exists():
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    from zoo.training import completed_epochs

    assert 1 <= completed_epochs(cut) < epochs
    resumed = subprocess.run(zoo_command("train", model, "--out", cut, "--epochs", epochs, "--resume"), cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["backend"] for r in json.loads((cut / "config.json").read_text())["resumed"]] == [backend]
    assert straight.wait(timeout=300) == 0, straight.stderr.read()[-3000:]
    for a, b in zip(_weights(tmp_path / "straight"), _weights(cut), strict=True):
        np.testing.assert_array_equal(a, b)


# 6. Every unreadable file is named; resume falls back to the newest intact state --------------------------------

def _resume(run, epochs=2):
    return zoo_cli("train", "vae", "--out", run, "--epochs", epochs, "--resume")


def test_a_finished_run_resumed_to_the_epochs_it_has_is_left_as_it_is(old_run):
    """A job script run again after it finished: nothing to train, so nothing is written (exit 0)."""
    before = snapshot(old_run)
    done = _resume(old_run, epochs=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{old_run} has already trained 1 epochs (--epochs 1); nothing to do and nothing was changed" in done.stderr
    assert "wrote" not in done.stdout
    after = snapshot(old_run)
    after.pop(".lock", None)  # the lock file the run takes while it looks (empty)
    assert after == {k: v for k, v in before.items() if k != ".lock"}


def test_a_good_run_whose_continuation_diverges_keeps_its_last_good_state(old_run):
    """The case of a NaN model saved over a good one: here the resumed epochs go non-finite (a KL weight
    of 1e38 put into the config.json the model is rebuilt from: its losses overflow within a few steps; the
    learning rate comes back from the checkpoint), and the model, history, samples and checkpoints of
    epoch 1 stay."""
    config = json.loads((old_run / "config.json").read_text())
    config["model_config"]["beta"] = 1e38
    (old_run / "config.json").write_text(json.dumps(config))
    kept = {name: data for name, data in snapshot(old_run).items()
            if name in ("model.keras", "history.json", "samples.png") or name.startswith("checkpoint")}
    done = _resume(old_run, epochs=3)
    assert done.returncode == 2
    line = error_line(done, "train")
    assert "training diverged" in line and "at epoch 2, step " in line and "were not saved" in line
    assert "keeps epoch 1" in line
    now = snapshot(old_run)
    assert {name: now.get(name) for name in kept} == kept


def test_a_cache_entry_in_config_json_is_never_taken_as_a_path(old_run):
    config = json.loads((old_run / "config.json").read_text())
    config["cache"] = str(old_run.parent / "elsewhere")
    (old_run / "config.json").write_text(json.dumps(config))
    before = snapshot(old_run)
    done = _resume(old_run)
    assert done.returncode == 2
    assert "must be true or false" in error_line(done, "train")
    assert snapshot(old_run) == before and not (old_run.parent / "elsewhere").exists()


@pytest.mark.parametrize("option", [["--n-likelihood=-2"], ["--n-likelihood", "0"], ["--n-samples=-3"],
                                    ["--n-samples", "1"], ["--components", "0"]])
def test_evaluate_refuses_counts_below_one_before_computing_anything(trained, tmp_path, option):
    run = tmp_path / "run"
    shutil.copytree(trained["vae"], run)
    before = snapshot(run)
    done = zoo_cli("evaluate", run, "--k", "2", *option)
    assert done.returncode == 2
    line = error_line(done, "evaluate")
    flag = option[0].split("=")[0]
    assert f"({flag}) must be a whole number >=" in line and "nothing was evaluated" in line
    assert "loading" not in done.stderr  # refused before the first stage
    assert snapshot(run) == before


def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one_and_says_so(old_run):
    meta = old_run / "checkpoint" / "training_metadata.json"
    shutil.copyfile(meta, meta.with_name(meta.name + ".bkp"))
    shutil.copyfile(old_run / "checkpoint" / "latest.weights.h5", old_run / "checkpoint" / "latest.weights.h5.bkp")
    meta.write_bytes(b'{"epoch": 1, "batch\x01')  # cut short: "Invalid control character" in json
    done = _resume(old_run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{meta} is not valid JSON" in done.stderr and "restoring the previous training state (epoch 1)" in done.stderr
    assert json.loads((old_run / "history.json").read_text())["epoch"] == [0, 1]


def test_weights_that_are_not_the_ones_the_metadata_names_are_never_restored(old_run):
    """A kill between writing the weights and their epoch count (Keras' own order) is caught by the digest."""
    weights = old_run / "checkpoint" / "latest.weights.h5"
    data = weights.read_bytes()
    middle = len(data) // 2
    weights.write_bytes(data[:middle] + bytes(255 - b for b in data[middle : middle + 64]) + data[middle + 64 :])
    done = _resume(old_run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "is not the file training_metadata.json was saved with" in done.stderr
    assert "resuming from model.keras (epoch 1), the newest intact state" in done.stderr
    assert json.loads((old_run / "history.json").read_text())["epoch"] == [0, 1]


def test_with_every_saved_state_damaged_resume_names_the_files_and_changes_nothing(old_run):
    for name in ("checkpoint/training_metadata.json", "model.keras"):
        (old_run / name).write_bytes(b"garbage")
    before = snapshot(old_run)
    done = _resume(old_run)
    assert done.returncode == 2
    line = error_line(done, "train")
    assert f"{old_run / 'checkpoint' / 'training_metadata.json'} is not valid JSON" in line
    assert "model.keras is not the file history.json was saved with" in line and "--overwrite" in line
    assert snapshot(old_run) == before


def test_a_run_that_died_before_its_first_epoch_does_not_block_the_next_one(old_run):
    shutil.rmtree(old_run / "checkpoint")
    (old_run / "model.keras").unlink()
    done = zoo_cli("train", "vae", *TINY, "--out", old_run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replacing the run in" in done.stdout + done.stderr
    assert (old_run / "model.keras").is_file()


def test_a_bmp_tensorflow_cannot_decode_is_named_and_skipped(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / f"img{i:02d}.png")
    Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).convert("1").save(tmp_path / "one-bit.bmp")
    done = zoo_cli("train", "ae", "--dataset", f"folder:{tmp_path}", "--epochs", "1", "--batch-size", "8",
                   "--no-validation", "--out", tmp_path.parent / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "one-bit.bmp (a 1-bit BMP, which TensorFlow cannot decode correctly; convert it to PNG)" in done.stderr


def test_a_file_that_fails_to_decode_during_training_is_named(tmp_path):
    """A file that changed after the folder was checked: the error names it instead of a tf.data traceback."""
    import tensorflow as tf
    from PIL import Image

    from zoo import data, training

    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / f"img{i:02d}.png")
    ds = data.load(f"folder:{tmp_path}", batch_size=4, shuffle=False)
    (tmp_path / "img05.png").write_bytes(b"not a png any more")
    with pytest.raises(tf.errors.OpError) as raised:
        for _ in ds:
            pass
    problem = training._data_failure(raised.value, ds)
    assert problem.startswith(f"{tmp_path / 'img05.png'} cannot be decoded by TensorFlow (")



# 7. Images outside [0, 1] or not finite are refused at the edge of fit ------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda x: x * 255.0, "images range from 0 to 255, outside [0, 1]; the models take float images in [0, 1]"),
    (lambda x: x - 0.5, "images range from -0.5 to 0.5, outside [0, 1]"),
    (_poisoned, "images hold 1 NaN or infinite values (the first at index (0, 3, 3, 0))"),
    (lambda x: (x * 255).astype(np.uint8), "images are uint8, not float; the models take float images in [0, 1] "
                                           "(divide uint8 images by 255)"),
], ids=["0-255", "centred", "nan", "uint8"])
def test_fit_refuses_images_that_are_not_finite_or_in_range(digits, change, message):
    model = zoo.Autoencoder((8, 8, 1), 2, filters=(4,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = digits[0][:64]
    with pytest.raises(ValueError) as raised:
        model.fit(change(images), epochs=1, batch_size=32, verbose=0)
    assert message in str(raised.value)
    assert model.training_steps == 0  # refused before the first step


def test_fit_on_a_dataset_stops_at_the_first_bad_batch_with_the_message(digits):
    import tensorflow as tf

    model = zoo.Autoencoder((8, 8, 1), 2, filters=(4,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = digits[0][:64].copy()
    images[40] *= 255.0  # in the second batch of 32
    finished = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: finished.append(batch))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"fit: pixel values above 1"):
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(32), epochs=1, verbose=0, shuffle=False,
                  callbacks=[record])
    assert finished == [0]  # the second batch never finished a step


@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_a_damaged_model_keras_is_named_by_export_and_evaluate(trained, tmp_path, command):
    run = tmp_path / "run"
    shutil.copytree(trained["vae"], run)
    model = run / "model.keras"
    model.write_bytes(model.read_bytes()[:200])  # cut short
    before = snapshot(run)
    done = zoo_cli(command, run)
    assert done.returncode == 2
    line = error_line(done, command)
    assert f"{model} is not a readable Keras model (" in line and "cut short or damaged" in line
    assert snapshot(run) == before
