"""zoo.callbacks in a user's own `fit`: real TensorBoard event files read
back, projector files, run checkpoints, and Keras' BackupAndRestore on the
zoo's subclassed models (the DCGAN's two optimizers included)."""

import io
import json
import math
import os
import signal

import keras
import numpy as np
import pytest

import zoo
from zoo import callbacks, data


@pytest.fixture(scope="module")
def digits():
    images, labels = data.digits_arrays("train")
    return images[:64], labels[:64]


def read_run(run_dir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def scalars(acc, tag):
    from tensorboard.util import tensor_util

    return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]


def images(acc, tag):
    """[(step, uint8 array)] of an image summary (one image per step)."""
    from PIL import Image
    from tensorboard.util import tensor_util

    out = []
    for event in acc.Tensors(tag):
        width, height, png = tensor_util.make_ndarray(event.tensor_proto)[:3]
        image = np.asarray(Image.open(io.BytesIO(png)))
        assert image.shape[:2] == (int(height), int(width))
        out.append((event.step, image))
    return out


def small_vae(**kwargs):
    vae = zoo.VAE((8, 8, 1), latent_dim=3, filters=(4, 8), hidden_dim=16, seed=0, **kwargs)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return vae


def small_gan(d_lr=1e-3, g_lr=5e-4):
    gan = zoo.DCGAN((8, 8, 1), latent_dim=4, generator_filters=(8, 4), seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(d_lr, beta_1=0.5), g_optimizer=keras.optimizers.Adam(g_lr, beta_1=0.5))
    return gan


def test_learning_rate_names_for_one_and_two_optimizers():
    assert list(callbacks.optimizers(small_vae())) == ["learning_rate"]
    gan = small_gan()
    assert callbacks.learning_rates(gan) == pytest.approx({"d_learning_rate": 1e-3, "g_learning_rate": 5e-4})
    assert callbacks.steps_done(gan) == 0


def test_tensorboard_logs_both_dcgan_learning_rates_and_continues_the_step_axis(tmp_path, digits):
    gan = small_gan()
    gan.fit(digits[0], epochs=1, batch_size=16, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path, update_freq=1)])
    # A later fit (as after a resume) with a fresh callback continues the steps and epochs.
    gan.fit(digits[0], initial_epoch=1, epochs=2, batch_size=16, verbose=0,
            callbacks=[callbacks.TensorBoard(tmp_path, update_freq=1)])
    train = read_run(tmp_path / "train")
    assert [s for s, _ in scalars(train, "batch_d_loss")] == list(range(1, 9))
    assert [s for s, _ in scalars(train, "epoch_g_loss")] == [0, 1]
    assert scalars(train, "batch_d_learning_rate") == [(s, pytest.approx(1e-3)) for s in range(1, 9)]
    assert scalars(train, "epoch_g_learning_rate") == [(0, pytest.approx(5e-4)), (1, pytest.approx(5e-4))]


def test_tensorboard_per_step_learning_rate_follows_a_schedule(tmp_path, digits):
    vae = zoo.VAE((8, 8, 1), latent_dim=3, filters=(4, 8), hidden_dim=16, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-2, 1, 0.5)))
    vae.fit(digits[0], epochs=1, batch_size=16, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path, update_freq=2)])
    train = read_run(tmp_path / "train")
    # Logged after steps 2 and 4: the rate after 2 and 4 updates.
    assert scalars(train, "batch_learning_rate") == [(2, pytest.approx(2.5e-3)), (4, pytest.approx(6.25e-4))]
    assert [s for s, _ in scalars(train, "batch_kl_loss")] == [2, 4]


def test_image_summaries_of_a_vae(tmp_path, digits):
    vae = small_vae()
    held_out = data.digits_arrays("test")[0][:16]
    summaries = callbacks.ImageSummaries(tmp_path, images=held_out, seed=3)
    vae.fit(digits[0], epochs=2, batch_size=16, verbose=0, callbacks=[summaries])
    run = read_run(tmp_path / "images")
    assert {"samples", "reconstructions", "interpolation"} <= set(run.Tags()["tensors"])
    samples = images(run, "samples")
    assert [s for s, _ in samples] == [0, 1]
    cell = 32 + 2  # 8x8 digits enlarged 4 times, 2 pixels of padding
    assert samples[1][1].shape[:2] == (8 * cell + 2, 8 * cell + 2)
    assert not np.array_equal(samples[0][1], samples[1][1])  # the model changed between epochs
    # The same z every epoch: a new callback with the same seed draws the same grid now.
    again = callbacks.ImageSummaries(tmp_path / "other", images=held_out, seed=3)
    again.set_model(vae)
    grids = again.grids()
    np.testing.assert_array_equal(grids["samples"][..., 0], samples[1][1])  # grey PNGs decode to 2-D
    other = callbacks.ImageSummaries(tmp_path / "other", seed=4)
    other.set_model(vae)
    assert not np.array_equal(other.grids()["samples"], grids["samples"])
    recon = images(run, "reconstructions")[-1][1]
    assert recon.shape[:2] == (4 * cell + 2, 8 * cell + 2)
    originals = (np.rint(held_out[:8, :, :, 0] * 255)).astype(np.uint8).repeat(4, axis=1).repeat(4, axis=2)
    np.testing.assert_array_equal(recon[2:34, 2:34], originals[0])  # row 1: the held-out images
    strip = images(run, "interpolation")[-1][1]
    assert strip.shape[:2] == (4 * cell + 2, 10 * cell + 2)
    # Each row starts at the reconstruction of an even held-out image and ends at the next one's.
    np.testing.assert_array_equal(strip[2:34, 2:34], recon[36:68, 2:34])
    np.testing.assert_array_equal(strip[2:34, 2 + 9 * cell : 2 + 9 * cell + 32], recon[36:68, 2 + cell : 2 + cell + 32])


def test_image_summaries_of_a_dcgan_have_no_reconstructions(tmp_path, digits):
    gan = small_gan()
    gan.fit(digits[0], epochs=1, batch_size=16, verbose=0,
            callbacks=[callbacks.ImageSummaries(tmp_path, images=digits[0][:8], num_samples=16)])
    run = read_run(tmp_path / "images")
    assert set(run.Tags()["tensors"]) == {"samples", "interpolation"}
    assert images(run, "samples")[0][1].shape[:2] == (2 * 34 + 2, 8 * 34 + 2)


def test_interpolate_linear_and_spherical():
    z0, z1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    line = callbacks.interpolate(z0, z1, 5)
    np.testing.assert_allclose(line[[0, -1]], [z0, z1])
    np.testing.assert_allclose(line[2], [0.5, 0.5])
    arc = callbacks.interpolate(2 * z0, 2 * z1, 5, spherical=True)
    np.testing.assert_allclose(arc[[0, -1]], [2 * z0, 2 * z1], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 2.0, rtol=1e-6)  # stays on the shell


def test_embedding_projector_exports_codes_labels_and_sprite(tmp_path, digits):
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins import projector

    vae = small_vae()
    held_images, held_labels = data.digits_arrays("test")
    held_images, held_labels = held_images[:50], held_labels[:50]
    export = callbacks.EmbeddingProjector(tmp_path, held_images, held_labels, class_names=[f"digit {d}" for d in range(10)])
    vae.fit(digits[0], epochs=1, batch_size=16, verbose=0, callbacks=[export])
    run_dir = tmp_path / "projector"
    config = text_format.Parse((run_dir / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    (embedding,) = config.embeddings
    assert (embedding.tensor_path, embedding.metadata_path, embedding.sprite.image_path) == (
        "codes.tsv", "metadata.tsv", "sprite.png")
    codes = np.loadtxt(run_dir / "codes.tsv", delimiter="\t")
    np.testing.assert_allclose(codes, keras.ops.convert_to_numpy(vae.encode(held_images)[0]), rtol=1e-4, atol=1e-5)
    rows = (run_dir / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "index\tlabel" and len(rows) == 51
    assert rows[1] == f"0\tdigit {held_labels[0]}"
    assert list(embedding.sprite.single_image_dim) == [32, 32]
    side = math.ceil(math.sqrt(50)) * 32
    assert Image.open(run_dir / "sprite.png").size == (side, side)
    assert read_run(run_dir).Tags()["tensors"] == ["projector"]  # listed as a run
    gan_export = callbacks.EmbeddingProjector(tmp_path / "gan", held_images)
    gan_export.set_model(small_gan())
    with pytest.raises(ValueError, match="needs a model with encode"):
        gan_export.write(0)


def test_run_checkpoint_keeps_model_and_history_across_fits(tmp_path, digits):
    vae = small_vae()
    vae.fit(digits[0], epochs=2, batch_size=16, verbose=0, callbacks=[callbacks.RunCheckpoint(tmp_path)])
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["epoch"] == [0, 1] and len(record["history"]["loss"]) == 2
    assert record["history"]["learning_rate"] == [pytest.approx(1e-3)] * 2
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(*(keras.ops.convert_to_numpy(m.embed(digits[0][:4])) for m in (reloaded, vae)), rtol=1e-5, atol=1e-6)
    assert int(reloaded.optimizer.iterations) == 8  # optimizer state included
    first = record["history"]["loss"][0]
    # Epoch 1 trained again (an interruption after it was logged but before it was backed up): replaced, not repeated.
    vae.fit(digits[0], initial_epoch=1, epochs=3, batch_size=16, verbose=0, callbacks=[callbacks.RunCheckpoint(tmp_path)])
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["epoch"] == [0, 1, 2] and len(record["history"]["loss"]) == 3
    assert record["history"]["loss"][0] == first


@pytest.mark.parametrize("make", [small_vae, small_gan], ids=["vae", "dcgan"])
def test_backup_and_restore_resumes_weights_optimizers_and_epoch(tmp_path, digits, make):
    backup = str(tmp_path / "checkpoint")
    first = make()
    first.fit(digits[0], epochs=1, batch_size=16, verbose=0,
              callbacks=[callbacks.BackupAndRestore(backup, delete_checkpoint=False)])
    trained = [w.numpy().copy() for w in first.weights]

    class Snapshot(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = [w.numpy().copy() for w in self.model.weights]
            self.steps = {name: int(opt.iterations) for name, opt in callbacks.optimizers(self.model).items()}

    snapshot = Snapshot()
    second = make()
    history = second.fit(digits[0], epochs=2, batch_size=16, verbose=0,
                         callbacks=[keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False), snapshot])
    assert history.epoch == [1]  # only the missing epoch ran
    for restored, saved in zip(snapshot.weights, trained):
        np.testing.assert_array_equal(restored, saved)
    assert set(snapshot.steps.values()) == {4}  # every optimizer's state came back
    assert callbacks.steps_done(second) == 8


def test_interrupts_deferred_finishes_the_block_then_raises():
    # Python's own handler, whatever this process inherited (a background job starts with SIGINT ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _check_interrupts_deferred()
    finally:
        signal.signal(signal.SIGINT, inherited)


def _check_interrupts_deferred():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with callbacks.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)  # still runs: the interrupt waits
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with callbacks.interrupts_deferred():
        pass  # no signal, no exception
