"""Callbacks that keep training safe to stop and to resume: saves no signal can cut in half
(`interrupts_deferred`), no non-finite weights saved (`StopOnNonFinite`, the savers' checks),
checkpoints whose weights and epoch count are an intact, verified pair (`BackupAndRestore`,
`checkpoint_states`), the run's `model.keras` and history (`RunCheckpoint`), and training
noise that a resumed run draws as the uninterrupted one did (`NoiseFromEpoch`).

All are also in `zoo.callbacks`.
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

from zoo import _io
from zoo.training_state import _seed_states, learning_rates, weights_are_finite
from zoo_common import files, layout


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


def newest_intact_state(backup_dir, states=None):
    """(weights_path, metadata) of the newest intact state in `backup_dir`, or None. `states`: the
    `checkpoint_states(backup_dir)` already read, so that no file is hashed twice."""
    for weights, meta, problem in checkpoint_states(backup_dir) if states is None else states:
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
    a save waits until the save is done. Arguments as for Keras' callback,
    and `read_only=True`: restore, never save nor delete (a worker of a
    multi-worker cluster other than the chief, which writes the checkpoints).
    """

    def __init__(self, backup_dir, *args, read_only=False, **kwargs):
        super().__init__(backup_dir, *args, **kwargs)
        self.read_only = read_only

    def on_train_begin(self, logs=None):
        states = checkpoint_states(self.backup_dir)
        intact = newest_intact_state(self.backup_dir, states)
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
        if self.read_only or not weights_are_finite(self.model):
            return
        with interrupts_deferred():
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        # A fit that diverged keeps the last good checkpoint even with delete_checkpoint=True.
        if not self.read_only and weights_are_finite(self.model):
            super().on_train_end(logs)

    def on_train_batch_end(self, batch, logs=None):
        if self.read_only or self.save_freq == "epoch":
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
