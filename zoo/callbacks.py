"""Callbacks for `fit` of the zoo's models: TensorBoard scalars with every
learning rate, image summaries, the embedding projector and run checkpoints.

`zoo train` uses all of them; they work as well in your own `fit`:

>>> log_dir = "runs/mine"
>>> images, labels = zoo.data.arrays("digits", "test")
>>> vae.fit(train_ds, epochs=20, callbacks=[
...     zoo.callbacks.TensorBoard(log_dir, update_freq=10),        # runs train/ and validation/
...     zoo.callbacks.ImageSummaries(log_dir, images=images[:64]),  # run images/
...     zoo.callbacks.EmbeddingProjector(log_dir, images, labels),  # run projector/
...     zoo.callbacks.RunCheckpoint(log_dir),                      # model.keras, history.json
...     zoo.callbacks.BackupAndRestore(f"{log_dir}/checkpoint"),    # resume after a crash
... ])

Then `tensorboard --logdir runs`.
"""

import contextlib
import math
import os
import shutil
import signal
import threading
import time

import keras
import numpy as np

from zoo_common.latents import interpolate_latents

from zoo import _io
from zoo_common import files, layout

# TensorBoard's projector refuses sprites larger than this on a side.
_MAX_SPRITE_SIDE = 8192


def optimizers(model):
    """{learning-rate log name: optimizer} of every optimizer `model` owns.

    A single-optimizer model gives {"learning_rate": model.optimizer}; the
    DCGAN, whose `model.optimizer` is None, {"d_learning_rate": d_optimizer,
    "g_learning_rate": g_optimizer}.
    """
    found = {}
    if isinstance(getattr(model, "optimizer", None), keras.optimizers.Optimizer):
        found["learning_rate"] = model.optimizer
    for attr, value in sorted(vars(model).items()):
        if attr != "optimizer" and not attr.startswith("_") and isinstance(value, keras.optimizers.Optimizer):
            found[attr.replace("optimizer", "learning_rate")] = value
    return found


def learning_rates(model):
    """{name: current learning rate (float)} of every optimizer of `model`, schedules evaluated."""
    rates = {}
    for name, opt in optimizers(model).items():
        opt = getattr(opt, "inner_optimizer", opt)
        rates[name] = float(keras.ops.convert_to_numpy(opt.learning_rate))
    return rates


def steps_done(model):
    """Training steps taken so far: the largest `iterations` of the model's optimizers (0 if none)."""
    counts = [int(keras.ops.convert_to_numpy(opt.iterations)) for opt in optimizers(model).values()]
    return max(counts, default=0)


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, with the learning rate of every optimizer
    and a step count that survives a resume.

    Scalars go where Keras puts them: `log_dir/train` (every tracked loss,
    `batch_*` every `update_freq` steps and `epoch_*` every epoch) and
    `log_dir/validation`. On top of Keras it logs the learning rate of each
    optimizer per step and per epoch (`learning_rate`, or the DCGAN's
    `d_learning_rate` and `g_learning_rate`, which Keras misses because
    `model.optimizer` is None), and numbers the steps from the optimizers'
    iteration count, so a run resumed with `BackupAndRestore` continues its
    step axis instead of starting again at 0.

    Args:
        log_dir: str. Directory of the TensorBoard runs.
        update_freq: "epoch", "batch" or int. Write per-step scalars every
            `update_freq` steps. Defaults to "epoch" (per-epoch scalars only).
        **kwargs: passed to `keras.callbacks.TensorBoard`.
    """

    def __init__(self, log_dir="logs", update_freq="epoch", **kwargs):
        super().__init__(log_dir=log_dir, update_freq=update_freq, **kwargs)
        self._continue_steps = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # The optimizers are restored (BackupAndRestore) by the time the first batch starts.
        self._continue_steps = True

    def on_train_batch_begin(self, batch, logs=None):
        if self._continue_steps:
            # Keras counts from 0 in every fit(); count from the steps already taken.
            self._global_train_batch = steps_done(self.model)
            self._continue_steps = False
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq != "epoch" and isinstance(logs, dict) and self._global_train_batch % self.update_freq == 0:
            logs = {**logs, **learning_rates(self.model)}
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, {**(logs or {}), **learning_rates(self.model)})


def _codes(model, images):
    """Codes of images: the AE's code, the mean of the VAE's q(z|x)."""
    return keras.ops.convert_to_numpy(model.embed(images))


def _decode(model, z):
    """Latents -> images in [0, 1] (numpy) with the model's generative half."""
    return keras.ops.convert_to_numpy(model.generate(np.asarray(z, np.float32)))


def interpolate(z0, z1, steps, spherical=False):
    """`steps` latents from z0 to z1 (both included), linear or spherical (slerp).

    Slerp keeps points between two draws of N(0, I) at the norm the prior
    puts its mass at (White 2016); linear is right between codes of an AE.
    """
    return interpolate_latents(z0, z1, steps, "spherical" if spherical else "linear")


class _EpochWriter(keras.callbacks.Callback):
    """Calls `self.write(epoch)` every `self.every` epochs (not after an epoch
    that left non-finite weights); closes `self._writer` at the end."""

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 and weights_are_finite(self.model):
            self.write(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ImageSummaries(_EpochWriter):
    """TensorBoard image summaries at the end of every `every`-th epoch, in
    the run `log_dir/images`:

    - `samples`: a grid decoded from the same `num_samples` latent vectors
      every epoch (z ~ N(0, I) drawn once from `seed`), so the progress of
      the generator is visible from epoch to epoch;
    - `reconstructions` (AE/VAE, with `images`): rows of fixed held-out
      images, each followed by a row of their reconstructions;
    - `interpolation`: each row walks the latent space between two end
      points: the codes of two held-out images (AE/VAE, linear) or two fixed
      prior draws (DCGAN, spherical).

    Args:
        log_dir: str. TensorBoard log directory.
        images: array (N, H, W, C) in [0, 1] or None. Fixed held-out images
            for reconstructions and interpolation end points. Defaults to None.
        num_samples: int. Defaults to 64.
        num_reconstructions: int. Defaults to 16.
        num_interpolations: int. Rows of the interpolation strip. Defaults to 4.
        interpolation_steps: int. Images per row. Defaults to 10.
        seed: int. Seed of the fixed latent vectors. Defaults to 0.
        every: int. Write every `every` epochs. Defaults to 1.
        run_name: str. Sub-directory of `log_dir`. Defaults to "images".
    """

    def __init__(self, log_dir, images=None, num_samples=64, num_reconstructions=16, num_interpolations=4,
                 interpolation_steps=10, seed=0, every=1, run_name="images"):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.images = None if images is None else np.asarray(images, np.float32)
        self.num_samples = num_samples
        self.num_reconstructions = num_reconstructions
        self.num_interpolations = num_interpolations
        self.interpolation_steps = interpolation_steps
        self.seed = seed
        self.every = every
        self.run_dir = os.path.join(self.log_dir, run_name)
        self._writer = None

    def _fixed_latents(self, n):
        return np.random.default_rng(self.seed).standard_normal((n, self.model.latent_dim)).astype(np.float32)

    def grids(self):
        """{summary name: uint8 grid (H, W, C)} for the model as it is now."""
        from zoo_common.grid import make_grid

        model = self.model
        z = self._fixed_latents(self.num_samples + 2 * self.num_interpolations)
        grids = {"samples": make_grid(_decode(model, z[: self.num_samples]), ncols=8)}
        rows = []
        held_out = self.images if self.images is not None and model.has_encoder else None
        if held_out is not None:
            n = min(self.num_reconstructions, len(held_out))
            if n:
                originals = held_out[:n]
                recons = _decode(model, _codes(model, originals))
                cols = min(8, n)
                pairs = []
                for start in range(0, n, cols):
                    pairs += [originals[start : start + cols], recons[start : start + cols]]
                grids["reconstructions"] = make_grid(np.concatenate(pairs), ncols=cols)
            ends = _codes(model, held_out[: 2 * self.num_interpolations])
            rows = [interpolate(ends[i], ends[i + 1], self.interpolation_steps) for i in range(0, len(ends) - 1, 2)]
        else:
            ends = z[self.num_samples :]
            rows = [interpolate(ends[i], ends[i + 1], self.interpolation_steps, spherical=True)
                    for i in range(0, len(ends) - 1, 2)]
        if rows:
            grids["interpolation"] = make_grid(_decode(model, np.concatenate(rows)), ncols=self.interpolation_steps)
        return grids

    _DESCRIPTIONS = {
        "samples": "Decoded from the same latent vectors z ~ N(0, I) every epoch.",
        "reconstructions": "Rows of fixed held-out images, each followed by a row of their reconstructions.",
        "interpolation": "Each row walks the latent space between two end points.",
    }

    def write(self, step):
        """Write the image summaries at `step` (the epoch) and flush them to disk."""
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.run_dir)
        with self._writer.as_default():
            for name, grid in self.grids().items():
                tf.summary.image(name, grid[None], step=step, description=self._DESCRIPTIONS[name])
        self._writer.flush()


class EmbeddingProjector(_EpochWriter):
    """Export the codes of held-out images to TensorBoard's embedding
    projector, with their labels and a sprite of the images (AE/VAE).

    Writes into `log_dir/projector/`: `codes.tsv` (the AE's codes or the
    VAE's posterior means, replaced every `every` epochs), `metadata.tsv`
    (index and label per image), `sprite.png` (the images, tiled) and
    `projector_config.pbtxt`, plus a text summary per export so that
    TensorBoard lists the directory as a run.

    Args:
        log_dir: str. TensorBoard log directory.
        images: array (N, H, W, C) in [0, 1]. Held-out images (~1,000).
        labels: int array (N,) or None. Their labels; -1 means unlabelled.
        class_names: list of str or None. Names of the labels.
        every: int. Export every `every` epochs. Defaults to 1.
        min_cell: int. Sprite cells are enlarged to at least this many pixels.
            Defaults to 28.
        run_name: str. Sub-directory of `log_dir`. Defaults to "projector".
    """

    def __init__(self, log_dir, images, labels=None, class_names=None, every=1, min_cell=28, run_name="projector"):
        super().__init__()
        self.images = np.asarray(images, np.float32)
        if self.images.ndim != 4 or not len(self.images):
            raise ValueError(f"EmbeddingProjector needs a non-empty batch of images (N, H, W, C); got {self.images.shape}.")
        self.labels = None if labels is None else np.asarray(labels)
        self.class_names = class_names
        self.every = every
        self.min_cell = min_cell
        self.run_dir = os.path.join(os.fspath(log_dir), run_name)
        self._writer = None

    def _label_text(self, label):
        if label < 0:
            return "unlabelled"
        if self.class_names and label < len(self.class_names):
            return str(self.class_names[label])
        return str(int(label))

    def _write_static_files(self):
        """metadata.tsv, sprite.png and projector_config.pbtxt (the same every epoch)."""
        from zoo_common.grid import make_grid, save_png
        from google.protobuf import text_format
        from tensorboard.plugins import projector

        n, height, width, _ = self.images.shape
        scale = max(1, math.ceil(self.min_cell / height))
        ncols = math.ceil(math.sqrt(n))
        if ncols * max(height, width) * scale > _MAX_SPRITE_SIDE:
            scale = max(1, _MAX_SPRITE_SIDE // (ncols * max(height, width)))
        if ncols * max(height, width) * scale > _MAX_SPRITE_SIDE:
            raise ValueError(f"{n} images of {height}x{width} do not fit in one projector sprite; pass fewer images.")
        # The projector reads the sprite as a square of ncols x ncols cells, row by row.
        blank = np.ones((ncols * ncols - n, height, width, self.images.shape[-1]), np.float32)
        cells = np.concatenate([self.images, blank]).repeat(scale, axis=1).repeat(scale, axis=2)
        save_png(make_grid(cells, ncols=ncols, padding=0, min_cell=1), os.path.join(self.run_dir, "sprite.png"))
        labels = self.labels if self.labels is not None else np.full(n, -1)
        lines = ["index\tlabel"] + [f"{i}\t{self._label_text(int(y))}" for i, y in enumerate(labels)]
        files.write_text("\n".join(lines) + "\n", os.path.join(self.run_dir, "metadata.tsv"))
        config = projector.ProjectorConfig()
        embedding = config.embeddings.add()
        embedding.tensor_name = "codes"
        embedding.tensor_path = "codes.tsv"
        embedding.metadata_path = "metadata.tsv"
        embedding.sprite.image_path = "sprite.png"
        embedding.sprite.single_image_dim.extend([width * scale, height * scale])
        files.write_text(text_format.MessageToString(config), os.path.join(self.run_dir, "projector_config.pbtxt"))

    def write(self, step):
        """Encode the images with the model as it is now and export the codes."""
        import tensorflow as tf

        if not self.model.has_encoder:
            raise ValueError(f"EmbeddingProjector needs a model with encode(); {type(self.model).__name__} has none.")
        if self._writer is None:
            os.makedirs(self.run_dir, exist_ok=True)
            self._write_static_files()
            self._writer = tf.summary.create_file_writer(self.run_dir)
        codes = np.concatenate([_codes(self.model, self.images[i : i + 256]) for i in range(0, len(self.images), 256)])
        text = "\n".join("\t".join(f"{v:.6g}" for v in row) for row in codes) + "\n"
        files.write_text(text, os.path.join(self.run_dir, "codes.tsv"))
        with self._writer.as_default():
            tf.summary.text(
                "projector", f"codes of {len(codes)} held-out images after epoch {step + 1}, "
                f"shape {codes.shape}; open the Projector tab", step=step
            )
        self._writer.flush()


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block is done, so that a
    checkpoint is never left half-written; the signal is delivered when the
    block ends. Outside the main thread (where Python cannot handle signals)
    it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif received[0] == signal.SIGINT:
                raise KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                signal.raise_signal(received[0])


def weights_are_finite(model):
    """Whether every weight of `model` (optimizer state included) is finite."""
    variables = list(model.weights) + [v for opt in optimizers(model).values() for v in opt.variables]
    for v in variables:
        value = keras.ops.convert_to_numpy(v)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            return False
    return True


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop `fit` at the first step whose logged values (every tracked loss,
    not only `loss` as Keras' TerminateOnNaN) are NaN or infinite, and
    remember where: `stopped_at` = (epoch, step, name, value), else None.

    The zoo's checkpoint callbacks do not save non-finite weights, so a run
    that diverges keeps its last good epoch. Put this callback first.
    """

    def __init__(self):
        super().__init__()
        self.stopped_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            try:
                value = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                self.stopped_at = (self._epoch, batch, name, value)
                self.model.stop_training = True
                return


def _seed_states(model):
    """The state variables of every `keras.random.SeedGenerator` in `model` (not part of its weights)."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


class NoiseFromEpoch(keras.callbacks.Callback):
    """Restart the model's training noise at every epoch from (its seed, epoch).

    The sampling noise of a model (the VAE's reparameterisation, the denoising
    AE's corruption, the DCGAN's z) comes from `keras.random.SeedGenerator`
    states, which are not among the weights a checkpoint saves. With this
    callback, epoch e draws the same noise whether or not the run was
    interrupted and resumed before it (with `zoo.data.load(start_epoch=...)`
    for the data, a resumed run is the run it continues). Each generator's
    seed at epoch e mixes its initial seed with e (numpy's SeedSequence).
    """

    def on_train_begin(self, logs=None):
        # The initial seeds: a model built from its config starts there, resumed or not.
        self._seeds = [int(keras.ops.convert_to_numpy(v)[0]) for v in _seed_states(self.model)]

    def on_epoch_begin(self, epoch, logs=None):
        for variable, seed in zip(_seed_states(self.model), self._seeds):
            mixed = int(np.random.SeedSequence([seed % 2**32, epoch]).generate_state(1)[0]) % 2**31
            variable.assign(np.array([mixed, 0], dtype=variable.dtype))


def file_digest(path):
    """sha256 of a file's bytes (hex)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_states(backup_dir):
    """The training states saved in `backup_dir`, newest first, each checked.

    Returns [(weights_path, metadata dict or None, problem or None)] for the
    latest and the previous (`.bkp`) pair that exist. A pair is intact (problem
    None) when its metadata parses and names the digest of the weights file
    beside it (metadata of an older genzoo without a digest is trusted).
    """
    found = []
    for suffix in ("", ".bkp"):
        weights = os.path.join(os.fspath(backup_dir), "latest.weights.h5" + suffix)
        meta_path = os.path.join(os.fspath(backup_dir), "training_metadata.json" + suffix)
        if not (os.path.exists(weights) or os.path.exists(meta_path)):
            continue
        meta, problem = None, None
        try:
            meta = files.read_json(meta_path)
            if not isinstance(meta, dict) or not isinstance(meta.get("epoch"), int):
                problem = f"{meta_path} holds no epoch count"
        except ValueError as err:
            problem = str(err)
        if problem is None and meta is None:
            problem = f"{meta_path} is missing"
        elif problem is None and not os.path.exists(weights):
            problem = f"{weights} is missing"
        elif problem is None and "sha256" in meta and meta["sha256"] != file_digest(weights):
            problem = f"{weights} is not the file {os.path.basename(meta_path)} was saved with (cut short or changed)"
        found.append((weights, meta, problem))
    return found


def newest_intact_state(backup_dir):
    """(weights_path, metadata) of the newest intact state in `backup_dir`, or None (see `checkpoint_states`)."""
    for weights, meta, problem in checkpoint_states(backup_dir):
        if problem is None:
            return weights, meta
    return None


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose saves nothing can cut in half,
    and which never saves non-finite weights over a good checkpoint.

    Keras' callback saves the weights (optimizer state included; both of the
    DCGAN's optimizers) and the epoch reached, and restores them when `fit`
    starts again. Keras writes the weights file in place and then the epoch,
    so a kill between the two pairs one epoch's count with the next epoch's
    weights. Here each file is written to a temporary name and renamed, the
    metadata records the sha256 of the weights it goes with, the previous
    pair (`double_checkpoint=True`) is replaced only once a new intact pair
    exists, and a restore takes the newest intact pair; when none is intact
    it raises a ValueError that names the files. A Ctrl-C or SIGTERM during
    a save waits until the save is done. Arguments as for Keras' callback.
    """

    def on_train_begin(self, logs=None):
        states = checkpoint_states(self.backup_dir)
        intact = newest_intact_state(self.backup_dir)
        if intact is None:
            if states:
                raise ValueError(
                    f"no intact training state in {self.backup_dir}: {'; '.join(p for _, _, p in states)}. "
                    "Move the folder away to start again from scratch."
                )
            return
        weights, meta = intact
        if states[0][2] is not None:
            import warnings

            warnings.warn(f"{states[0][2]}; restoring the previous training state (epoch {meta['epoch']}) instead.",
                          stacklevel=2)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            if weights.endswith(".weights.h5"):
                self.model.load_weights(weights)
            else:  # the previous state: Keras reads weights only from a file named *.weights.h5
                copy = files.temp_file_beside(weights, ".weights.h5")
                try:
                    shutil.copyfile(weights, copy)
                    self.model.load_weights(copy)
                finally:
                    files.remove(copy)
        except Exception as err:  # noqa: BLE001 - h5py and Keras raise many kinds; name the file
            raise ValueError(f"cannot restore the training state from {weights} ({type(err).__name__}: {err}).") from None
        self.model._initial_epoch = meta["epoch"]

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        states = checkpoint_states(self.backup_dir)
        if self.double_checkpoint and states and states[0][0] == self._weights_path and states[0][2] is None:
            # The latest intact pair becomes the previous one: weights first, then the metadata that vouches for them.
            files.write_with(self._prev_weights_path, lambda tmp: shutil.copyfile(self._weights_path, tmp))
            files.write_with(self._prev_training_metadata_path,
                             lambda tmp: shutil.copyfile(self._training_metadata_path, tmp))
        files.write_with(self._weights_path, lambda tmp: self.model.save_weights(tmp), ".weights.h5")
        files.write_json({"epoch": self._current_epoch, "batch": self._last_batch_seen,
                          "sha256": file_digest(self._weights_path)}, self._training_metadata_path)

    def on_epoch_end(self, epoch, logs=None):
        if not weights_are_finite(self.model):
            return
        with interrupts_deferred():
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        # A fit that diverged keeps the last good checkpoint even with delete_checkpoint=True.
        if weights_are_finite(self.model):
            super().on_train_end(logs)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        with interrupts_deferred():
            super().on_train_batch_end(batch, logs)


class RunCheckpoint(keras.callbacks.Callback):
    """Keep a run directory current at every epoch end: `model.keras` (the
    whole model with its optimizer state, reloadable with
    `keras.saving.load_model`) and `history.json` (the per-epoch logs of every
    `fit` of the run, continued across resumes), each written atomically, so
    a crash or Ctrl-C leaves the last completed epoch behind.

    Pair it with `BackupAndRestore` (placed after it) to
    resume: the history drops any epoch that is trained again.

    Args:
        run_dir: str. Directory of model.keras and history.json.
        save_model: bool. Write model.keras every epoch. Defaults to True.
    """

    def __init__(self, run_dir, save_model=True):
        super().__init__()
        self.run_dir = os.fspath(run_dir)
        self.save_model = save_model
        self.history_path = layout.path(self.run_dir, layout.HISTORY)
        self.model_path = layout.path(self.run_dir, layout.MODEL)
        self.record = None

    def on_train_begin(self, logs=None):
        self.record = files.read_json(self.history_path, None) or {}
        if "epoch" not in self.record:  # none yet, or not ours: start a new record
            self.record = {"epoch": [], "history": {}, "seconds": 0.0}
        self._started = time.time()
        self._seconds_before = float(self.record.get("seconds", 0.0))

    def on_epoch_end(self, epoch, logs=None):
        if not weights_are_finite(self.model):
            return  # a diverged epoch is not saved over the last good one
        logs = {**(logs or {}), **learning_rates(self.model)}
        old_epochs, old_history = self.record["epoch"], self.record["history"]
        # A resumed run may train an epoch again whose logs were written
        # before the interruption: keep only the epochs before this one.
        keep = [i for i, e in enumerate(old_epochs) if e < epoch]
        history = {}
        for name in sorted(set(old_history) | set(logs)):
            old = old_history.get(name, [])
            value = logs.get(name)
            history[name] = [old[i] if i < len(old) else None for i in keep] + [None if value is None else float(value)]
        self.record = {
            "epoch": [old_epochs[i] for i in keep] + [epoch],
            "history": history,
            "seconds": self._seconds_before + time.time() - self._started,
        }
        with interrupts_deferred():
            if self.save_model:
                _io.save_model(self.model, self.model_path)
                # Vouches for the model file of this epoch: `zoo train --resume` may rebuild a damaged checkpoint from it.
                self.record["model_sha256"] = file_digest(self.model_path)
            files.write_json(self.record, self.history_path)
