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

import math
import os

import keras
import numpy as np

from zoo_common.latents import interpolate_latents

from zoo_common import files
# The callbacks that keep training safe to stop and resume, and the training-state helpers,
# live in their own modules; they are part of `zoo.callbacks` too.
from zoo.checkpoints import (  # noqa: F401
    BackupAndRestore, NoiseFromEpoch, RunCheckpoint, StopOnNonFinite, checkpoint_states, file_digest,
    interrupts_deferred, newest_intact_state,
)
from zoo.training_state import learning_rates, optimizers, steps_done, weights_are_finite  # noqa: F401

# TensorBoard's projector refuses sprites larger than this on a side.
_MAX_SPRITE_SIDE = 8192


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


def _codes(model, images, labels=None):
    """Codes of images: the AE's code, the mean of the VAE's q(z|x) (a conditional VAE's q(z|x, y))."""
    return keras.ops.convert_to_numpy(model.embed(images, labels))


def _decode(model, z, labels=None):
    """Latents -> images in [0, 1] (numpy) with the model's generative half (of class `labels`)."""
    z = np.asarray(z, np.float32)
    return keras.ops.convert_to_numpy(model.generate(z) if labels is None else model.generate(z, labels))


def _pairs_grid(make_grid, originals, recons, cols=8):
    """Rows of up to `cols` originals, each row followed by a row of their reconstructions."""
    cols = min(cols, len(originals))
    pairs = []
    for start in range(0, len(originals), cols):
        pairs += [originals[start : start + cols], recons[start : start + cols]]
    return make_grid(np.concatenate(pairs), ncols=cols)


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
      the generator is visible from epoch to epoch; a conditional model's
      has one row per class (up to 16), the same 8 latents in every row;
    - `reconstructions` (AE/VAE, with `images`): rows of fixed held-out
      images, each followed by a row of their reconstructions;
    - `interpolation`: each row walks the latent space between two end
      points: the codes of two held-out images (AE/VAE, linear) or two fixed
      prior draws (DCGAN and conditional models, spherical; a conditional
      model's row i of class i).

    Args:
        log_dir: str. TensorBoard log directory.
        images: array (N, H, W, C) in [0, 1] or None. Fixed held-out images
            for reconstructions and interpolation end points. Defaults to None.
        labels: int array (N,) or None. Their labels: a conditional model
            reconstructs only with them. Defaults to None.
        num_samples: int. Defaults to 64.
        num_reconstructions: int. Defaults to 16.
        num_interpolations: int. Rows of the interpolation strip. Defaults to 4.
        interpolation_steps: int. Images per row. Defaults to 10.
        seed: int. Seed of the fixed latent vectors. Defaults to 0.
        every: int. Write every `every` epochs. Defaults to 1.
        run_name: str. Sub-directory of `log_dir`. Defaults to "images".
    """

    def __init__(self, log_dir, images=None, num_samples=64, num_reconstructions=16, num_interpolations=4,
                 interpolation_steps=10, seed=0, every=1, run_name="images", labels=None):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.images = None if images is None else np.asarray(images, np.float32)
        self.labels = None if labels is None else np.asarray(labels).astype(np.int32)
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
        if model.num_classes is not None:
            return self._conditional_grids(make_grid)
        z = self._fixed_latents(self.num_samples + 2 * self.num_interpolations)
        grids = {"samples": make_grid(_decode(model, z[: self.num_samples]), ncols=8)}
        rows = []
        held_out = self.images if self.images is not None and model.has_encoder else None
        if held_out is not None:
            n = min(self.num_reconstructions, len(held_out))
            if n:
                originals = held_out[:n]
                grids["reconstructions"] = _pairs_grid(make_grid, originals, _decode(model, _codes(model, originals)))
            ends = _codes(model, held_out[: 2 * self.num_interpolations])
            rows = self._walks(ends, spherical=False)
        else:
            rows = self._walks(z[self.num_samples :], spherical=True)
        if rows:
            grids["interpolation"] = make_grid(_decode(model, np.concatenate(rows)), ncols=self.interpolation_steps)
        return grids

    def _conditional_grids(self, make_grid):
        """A conditional model's grids: rows by class."""
        model, cols = self.model, 8
        classes = min(model.num_classes, 16)
        z = self._fixed_latents(cols + 2 * self.num_interpolations)
        grids = {"samples": make_grid(_decode(model, np.tile(z[:cols], (classes, 1)), np.repeat(np.arange(classes), cols)),
                                      ncols=cols)}
        if self.images is not None and self.labels is not None and model.has_encoder:
            n = min(self.num_reconstructions, len(self.images))
            if n:
                originals, labels = self.images[:n], self.labels[:n]
                grids["reconstructions"] = _pairs_grid(make_grid, originals,
                                                       _decode(model, _codes(model, originals, labels), labels))
        rows = self._walks(z[cols:], spherical=True)
        if rows:
            labels = np.repeat(np.arange(len(rows)) % model.num_classes, self.interpolation_steps)
            grids["interpolation"] = make_grid(_decode(model, np.concatenate(rows), labels),
                                               ncols=self.interpolation_steps)
        return grids

    def _walks(self, ends, spherical):
        """One path of `interpolation_steps` latents between each pair of `ends` (0-1, 2-3, ...)."""
        return [interpolate(ends[i], ends[i + 1], self.interpolation_steps, spherical=spherical)
                for i in range(0, len(ends) - 1, 2)]

    _DESCRIPTIONS = {
        "samples": "Decoded from the same latent vectors z ~ N(0, I) every epoch (a conditional model: a row per "
                   "class).",
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
        # A conditional model encodes each image with its label, q(z|x, y).
        given = self.labels if self.model.num_classes is not None else None
        codes = np.concatenate([_codes(self.model, self.images[i : i + 256], None if given is None else given[i : i + 256])
                                for i in range(0, len(self.images), 256)])
        text = "\n".join("\t".join(f"{v:.6g}" for v in row) for row in codes) + "\n"
        files.write_text(text, os.path.join(self.run_dir, "codes.tsv"))
        with self._writer.as_default():
            tf.summary.text(
                "projector", f"codes of {len(codes)} held-out images after epoch {step + 1}, "
                f"shape {codes.shape}; open the Projector tab", step=step
            )
        self._writer.flush()
