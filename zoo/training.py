"""The training run behind `zoo train`: load the data, build a model, fit it
with the zoo's callbacks, and keep the run directory current.

The run directory's files are named in `zoo_common.layout`. Every file of
ours is written atomically; `tensorboard --logdir RUN_DIR` (or its parent)
shows it all. Training runs on whichever Keras backend is loaded; the run's
config records it, and a run may be resumed on another backend (the
checkpoint files are backend-neutral).
"""

import os
import platform
import sys
import time
import warnings

import keras
import numpy as np

import zoo
from zoo import _checks, _io, registry, replicas
from zoo_common import files, layout

# Settings that define a run: `--resume` takes them from config.json.
DEFAULTS = {
    "dataset": "digits",
    "batch_size": 128,
    "latent_dim": None,
    "learning_rate": None,
    "d_learning_rate": None,
    "g_learning_rate": None,
    "image_size": None,
    "binarize": None,
    "cache": False,
    "take": None,
    "data_dir": None,
    "seed": 0,
    "log_every": 1,
    "validation": True,
    "precision": "float32",
    "distribute": None,
    "conditional": False,
}
# `distribute` names and the backend each runs on: zoo.replicas.DISTRIBUTIONS.
DISTRIBUTIONS = replicas.DISTRIBUTIONS
# Keras dtype policies `--precision` accepts. mixed_bfloat16 computes in bfloat16
# with float32 weights (and float32 losses: see zoo.networks); on CPUs with AMX
# or AVX512-BF16 it trains markedly faster (benchmarks/train_speed.py).
PRECISIONS = ("float32", "mixed_bfloat16")
# Settings a resumed run may change: how it logs and reads, not what it learns.
_RESUME_MAY_CHANGE = ("log_every", "validation", "cache", "data_dir")
# Held-out images for the projector (and, the first few, for reconstructions).
HELD_OUT = 1000


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `train`; the message says what is saved and how to resume."""


def build_model(model_name, image_shape, latent_dim=None, seed=None, dtype=None, **options):
    """The model the CLI name stands for, with its registry defaults (see `zoo.registry`)."""
    return registry.build(model_name, image_shape, latent_dim, seed=seed, dtype=dtype, **options)


def compile_model(model, learning_rate=None, d_learning_rate=None, g_learning_rate=None):
    """The model's default optimizers: Adam(1e-3) for AE/VAE, Adam(2e-4, beta_1=0.5) per DCGAN player.

    `learning_rate` sets every optimizer; `d_learning_rate`/`g_learning_rate`
    override it for the DCGAN's discriminator/generator.
    """
    return model.compile_default(learning_rate, d_learning_rate=d_learning_rate, g_learning_rate=g_learning_rate)


def generate_images(model, n, seed=0):
    """n images from the model's generative half (a plain AE decodes N(0, I) codes); a conditional
    model's in rows of 8 per class (up to n // 8 classes)."""
    if model.num_classes is None:
        return model.sample(n, seed=seed)
    rows = min(model.num_classes, max(1, n // 8))
    return model.sample(8 * rows, seed=seed, labels=np.repeat(np.arange(rows), 8))


def library_versions():
    """Versions of what trained the run: genzoo, Keras, its backend's library, numpy, Python."""
    import importlib

    import numpy as np

    backend = keras.backend.backend()
    versions = {"genzoo": zoo.__version__, "keras": keras.__version__, "keras_backend": backend}
    if backend in ("tensorflow", "jax", "torch"):  # each backend's library has its backend's name
        versions[backend] = importlib.import_module(backend).__version__
    versions.update(numpy=np.__version__, python=platform.python_version())
    return versions


def completed_epochs(out):
    """Epochs of the newest intact training state in `out/checkpoint` (0 if none)."""
    from zoo.checkpoints import newest_intact_state

    state = newest_intact_state(layout.path(out, layout.CHECKPOINT))
    return 0 if state is None else int(state[1]["epoch"])


def _data_failure(err, dataset):
    """A one-line description of `err` when it is the input pipeline failing to read the data, else None."""
    import tensorflow as tf

    if not isinstance(err, tf.errors.OpError):
        return None
    first_line = (err.message or str(err)).strip().splitlines()[0]
    finder = getattr(dataset, "first_undecodable", None)
    culprit = finder() if finder is not None else None
    if culprit is not None:
        return f"{culprit[0]} cannot be decoded by TensorFlow ({culprit[1]})"
    if keras.backend.backend() != "tensorflow" or "decode" in first_line.lower() or "image" in first_line.lower():
        return f"the training data could not be read ({first_line})"
    return None


def _class_count(model_name, spec, train_ds):
    """The class count a conditional model of `model_name` takes from the training data."""
    import inspect

    if "num_classes" not in inspect.signature(spec.cls.__init__).parameters:
        raise ValueError(f"--conditional: {model_name} has no conditional form; the conditional models are vae and "
                         "dcgan.")
    names = train_ds.class_names
    if not names or len(names) < 2:
        raise ValueError("--conditional trains on the dataset's labels, and this dataset has no classes (a folder: "
                         "one sub-folder per class); train without --conditional, or label the data.")
    return len(names)


def _cluster_failure(err):
    """What a multi-worker run's failure says of the lost worker (TensorFlow aborts every collective
    when a peer stops), or None for any other error."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not isinstance(err, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError)):
        return None
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    peers = [line for line in lines if line.startswith("/job:")]
    return f"unhealthy: {', '.join(peers)}" if peers else (lines[0][:200] if lines else type(err).__name__)


def _start_fresh(out, model_name, overwrite):
    if not layout.holds_run(out):
        return
    # A run that stopped before its first epoch was saved (a crash, a bad file) holds nothing to keep.
    done = completed_epochs(out)
    stub = done == 0 and not os.path.exists(layout.path(out, layout.MODEL))
    if not overwrite and not stub:
        config = files.read_json(layout.path(out, layout.CONFIG), {}) or {}
        held = f"{done} of {config.get('epochs', '?')} epochs of {config.get('model', model_name)}"
        raise ValueError(
            f"{out} already holds a run ({held}); pass --resume to continue it, --overwrite to start again, "
            "or choose another --out."
        )
    # Only what a run writes goes; a folder that holds anything else is the user's and stays.
    foreign = layout.foreign_files(out)
    if foreign:
        raise ValueError(
            f"{'--overwrite' if overwrite else 'starting again'} replaces only what `zoo train` wrote, but {out} "
            f"holds {foreign[0]}"
            f"{f' and {len(foreign) - 1} more files' if len(foreign) > 1 else ''} that no run writes; "
            "nothing was deleted. Move them away or choose another --out."
        )
    if stub and not overwrite:
        print(f"zoo train: replacing the run in {out}, which stopped before its first epoch was saved.")
    for name in layout.RUN_FILES:
        files.remove(layout.path(out, name))
    for name in layout.RUN_DIRS:
        files.remove(layout.path(out, name))


def _repair_checkpoint(out):
    """When no saved training state in `out/checkpoint` is intact, rebuild it from model.keras if history.json
    vouches for that file (its sha256), and say so; else raise a ValueError naming the broken files."""
    from zoo import checkpoints

    backup_dir = layout.path(out, layout.CHECKPOINT)
    states = checkpoints.checkpoint_states(backup_dir)
    if not states or checkpoints.newest_intact_state(backup_dir, states) is not None:
        return
    problems = "; ".join(problem for _, _, problem in states)
    model_path = layout.path(out, layout.MODEL)
    try:
        record = files.read_json(layout.path(out, layout.HISTORY)) or {}
    except ValueError:
        record = {}
    epochs = record.get("epoch") if isinstance(record, dict) else None
    vouched = (isinstance(epochs, list) and epochs and os.path.exists(model_path)
               and record.get("model_sha256") == checkpoints.file_digest(model_path))
    if not vouched:
        raise ValueError(f"cannot resume {out}: {problems}, and model.keras is not the file history.json was saved "
                         "with, so no intact training state is left; start again with --overwrite.")
    model = _io.load_model(model_path)
    saver = checkpoints.BackupAndRestore(backup_dir, double_checkpoint=True, delete_checkpoint=False)
    saver.set_model(model)
    saver._current_epoch, saver._last_batch_seen = int(epochs[-1]) + 1, 0
    saver._save_model()
    warnings.warn(f"{problems}; resuming from model.keras (epoch {int(epochs[-1]) + 1}), the newest intact state.",
                  stacklevel=2)


def _normalise(settings):
    settings = dict(settings)
    if settings.get("image_size") is not None:
        size = settings["image_size"]
        settings["image_size"] = [size, size] if isinstance(size, int) else [int(s) for s in size]
    return settings


def _resume_settings(out, model_name, given):
    config = files.read_json(layout.path(out, layout.CONFIG))
    if config is None:
        raise FileNotFoundError(f"{out} holds no run to resume (no config.json); start it without --resume.")
    if config.get("model") != model_name:
        raise ValueError(f"{out} holds a {config.get('model')!r} run, not {model_name!r}; resume it as `zoo train {config.get('model')} ...`.")
    saved = {key: config.get(key, default) for key, default in DEFAULTS.items()}
    # Settings read back from a file are checked like the user's own: `cache` is a switch, not a path.
    if not isinstance(saved["cache"], bool):
        raise ValueError(f"{out}/config.json has cache={saved['cache']!r}; it must be true or false. "
                         "Fix the file or start a new run.")
    saved["model_options"] = config.get("model_options", {})
    saved.update({key: given[key] for key in _RESUME_MAY_CHANGE if key in given})
    conflicts = [f"{key}={value!r} (saved: {saved[key]!r})" for key, value in given.items()
                 if key != "model_options" and value != saved[key]]
    conflicts += [f"{key}={value!r} (saved: {saved['model_options'].get(key)!r})"
                  for key, value in given.get("model_options", {}).items() if value != saved["model_options"].get(key)]
    if conflicts:
        raise ValueError(
            f"--resume continues {out} with the settings saved in its config.json, but these differ: "
            f"{', '.join(conflicts)}. Drop them, or start a new run with another --out."
        )
    return saved, config


def _held_out(dataset, image_shape, settings, binarize, download):
    """(images, labels) of up to HELD_OUT fixed held-out images, and the validation dataset (or None)."""
    from zoo import data

    kwargs = dict(image_size=image_shape[:2], channels=image_shape[2], cache=settings["cache"],
                  data_dir=settings["data_dir"], download=download)
    take = settings["take"]
    try:
        images, labels = data.arrays(dataset, "test", limit=min(HELD_OUT, take or HELD_OUT), binarize=False, **kwargs)
        validation = None
        if settings["validation"]:
            validation = data.load(dataset, "test", settings["batch_size"], shuffle=False, seed=settings["seed"],
                                   take=take, binarize=binarize, **kwargs)
    except ValueError as err:
        print(f"zoo train: no held-out images ({err}); training without validation, reconstructions or projector.")
        return None, None, None
    return images, labels, validation


def train(model_name, dataset=None, epochs=10, out="runs/run", batch_size=None, latent_dim=None, learning_rate=None,
          d_learning_rate=None, g_learning_rate=None, image_size=None, binarize=None, cache=None, take=None,
          data_dir=None, download=True, seed=None, log_every=None, validation=None, resume=False, overwrite=False,
          precision=None, distribute=None, cpu_replicas=None, conditional=None, verbose=1, **model_options):
    """Train `model_name` on `dataset` and keep the run directory `out` current. Returns the model.

    Args:
        model_name: str. "ae", "dae", "vae" or "dcgan".
        dataset: str. A `zoo.data.load` source. Defaults to "digits".
        epochs: int. Train until this many epochs in total (a resumed run
            counts the epochs it already has). Defaults to 10.
        out: str. The run directory.
        batch_size, latent_dim, seed: the usual. Default 128, per model, 0.
        learning_rate: float. Every optimizer's. Defaults to 1e-3 (AE/VAE)
            or 2e-4 (DCGAN).
        d_learning_rate, g_learning_rate: float. The DCGAN players' own.
        image_size, binarize, cache, take, data_dir, download: as for
            `zoo.data.load`. `binarize` defaults to True for a Bernoulli VAE.
        log_every: int. Per-step TensorBoard scalars every this many steps.
            Defaults to 1.
        validation: bool. Evaluate on the held-out split after every epoch.
            Defaults to True.
        precision: str. The Keras dtype policy the networks are built with:
            "float32" or "mixed_bfloat16" (bfloat16 needs no loss scaling). Defaults to
            "float32".
        distribute: str or None. "mirrored" (TensorFlow's MirroredStrategy:
            every GPU, else the CPU devices) or "data-parallel" (JAX,
            keras.distribution.DataParallel). `batch_size` is the global batch
            and must divide over the replicas; the last partial batch of an
            epoch is dropped; the DCGAN synchronises its batch norm across
            replicas. A step then equals one device's step on the global batch.
            Defaults to None (one device).
        cpu_replicas: int or None. Split the CPU into this many logical devices
            (TensorFlow) for `distribute` on a machine without GPUs.
        conditional: bool. A class-conditional model (vae, dcgan) trained on the
            dataset's labels, `num_classes` its class count. Defaults to False.
        resume: bool. Continue the run in `out` from its last completed
            epoch (weights, optimizer state, epoch and step counters,
            history) with its saved settings; only log_every, validation,
            cache and data_dir may change. Defaults to False.
        overwrite: bool. Delete a run already in `out` and start again.
        **model_options: model hyperparameters (noise_stddev, likelihood,
            beta, loss); None means the model's default.

    Ctrl-C stops at once and raises `Interrupted` (a KeyboardInterrupt); the
    last completed epoch stays saved and `resume=True` continues from it.
    """
    spec = registry.entry(model_name)
    epochs = _checks.positive_int("epochs", epochs)
    # Refused, never replaced by a default: 0, negatives, NaN and inf.
    for name, value in (("batch_size", batch_size), ("latent_dim", latent_dim), ("take", take)):
        if value is not None:
            _checks.positive_int(name, value)
    for name, value in (("learning_rate", learning_rate), ("d_learning_rate", d_learning_rate),
                        ("g_learning_rate", g_learning_rate)):
        if value is not None:
            _checks.positive_float(name, value)
    if log_every is not None and (isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 0):
        raise ValueError(f"log_every={log_every!r} must be an integer >= 0 (0: per-epoch scalars only).")
    given = {key: value for key, value in dict(
        dataset=dataset, batch_size=batch_size, latent_dim=latent_dim, learning_rate=learning_rate,
        d_learning_rate=d_learning_rate, g_learning_rate=g_learning_rate, image_size=image_size, binarize=binarize,
        cache=cache, take=take, data_dir=data_dir, seed=seed, log_every=log_every, validation=validation,
        precision=None if precision is None else _checks.choice("precision", precision, PRECISIONS),
        conditional=None if conditional is None else bool(conditional),
        distribute=None if distribute is None else _checks.choice("distribute", distribute, tuple(DISTRIBUTIONS)),
    ).items() if value is not None}
    options = {key: value for key, value in model_options.items() if value is not None}
    if options:
        given["model_options"] = options
    given = _normalise(given)
    if _distribute_of(out, given, resume) == "multi-worker" and not replicas.cluster_role().is_chief:
        # Another worker of the cluster: it trains its share and reads the chief's run directory, never writes it.
        return _train_locked(out, model_name, spec, epochs, given, resume, overwrite, download, verbose, cpu_replicas,
                             chief=False)
    with layout.locked(out):
        if layout.holds_run(out):
            layout.remove_temporary(out)  # left by a save that SIGKILL cut short
        return _train_locked(out, model_name, spec, epochs, given, resume, overwrite, download, verbose, cpu_replicas)


def _distribute_of(out, given, resume):
    """The distribution a run trains with: as given, else (resuming) as its config.json recorded."""
    if "distribute" in given or not resume:
        return given.get("distribute")
    recorded = files.read_json(layout.path(out, layout.CONFIG), None)
    return recorded.get("distribute") if isinstance(recorded, dict) else None


def _train_locked(out, model_name, spec, epochs, given, resume, overwrite, download, verbose, cpu_replicas=None,
                  chief=True):
    """`train` from its validated settings on, while it holds the run directory's lock (the chief), or
    as a worker of a multi-worker cluster other than the chief (`chief=False`): it writes nothing."""
    from zoo import callbacks, data
    from zoo_common.grid import save_grid

    if resume:
        settings, config = _resume_settings(out, model_name, given)
        if chief:
            _repair_checkpoint(out)
        if not os.path.isdir(layout.path(out, layout.CHECKPOINT)) and os.path.exists(layout.path(out, layout.MODEL)):
            raise ValueError(
                f"{out} has a model.keras but no checkpoint/ to resume from (an older genzoo's run, or the folder "
                "was deleted), so the training state is lost; start again with --overwrite."
            )
    else:
        if chief:
            _start_fresh(out, model_name, overwrite)
        settings = {**DEFAULTS, "model_options": {}, **given}
        config = None
    settings["model"] = model_name
    # Record the effective values, so config.json shows what the run used.
    if settings["latent_dim"] is None:
        settings["latent_dim"] = spec.latent_dim
    if settings["learning_rate"] is None:
        settings["learning_rate"] = spec.cls.default_learning_rate
    for key in spec.cls.player_learning_rates:
        if settings[key] is None:
            settings[key] = settings["learning_rate"]
    if settings.get("distribute") == "multi-worker" and settings["seed"] is None:
        settings["seed"] = 0  # every worker must shuffle alike to take its own share of each batch
    seed = settings["seed"]
    if seed is not None:
        import tensorflow  # noqa: F401 - the data pipeline's; imported first so that its global seed is set too

        keras.utils.set_random_seed(seed)

    scope, replica_count = replicas.distribution(settings.get("distribute"), cpu_replicas)
    if config is not None and config.get("replicas", 1) != replica_count:
        raise ValueError(f"{out} trained on {config.get('replicas', 1)} replicas and would resume on {replica_count}; "
                         "resume with the same devices (a different count changes the batch-norm statistics and the "
                         "run's noise), or start a new run.")
    if settings["batch_size"] % replica_count:
        fit = settings["batch_size"] - settings["batch_size"] % replica_count or replica_count
        raise ValueError(f"--batch-size {settings['batch_size']} does not divide over {replica_count} replicas; "
                         f"use a multiple of {replica_count}, e.g. --batch-size {fit}.")
    options = settings["model_options"]
    if model_name in ("dcgan", "wgan-gp") and settings.get("distribute") and config is None:
        options = settings["model_options"] = {"sync_batch_norm": True, **options}
    if settings["binarize"] is None:
        settings["binarize"] = model_name == "vae" and options.get("likelihood", "bernoulli") == "bernoulli"
    binarize = bool(settings["binarize"])
    dataset = settings["dataset"]
    done = completed_epochs(out) if resume else 0
    if resume and done == epochs and os.path.exists(layout.path(out, layout.MODEL)):
        # Run again once finished (a job script's retry): nothing to train, so nothing is touched.
        print(f"{out} has already trained {done} epochs (--epochs {epochs}); nothing to do and nothing was changed. "
              f"Pass --epochs {done + 1} or more to train it further.", file=sys.stderr)
        return _io.load_model(layout.path(out, layout.MODEL))
    if done > epochs:
        raise ValueError(
            f"{out} has already trained {done} epochs, more than --epochs {epochs}; --epochs is the total to reach: "
            f"pass --epochs {done + 1} or more to continue it (nothing was changed)."
        )
    # Epoch e's order and binarisation noise depend on (seed, e) alone: a resumed run sees what the
    # uninterrupted one would have (with no seed: tf.data's own reshuffle).
    keyed = seed is not None
    train_ds = data.load(
        dataset, "train", settings["batch_size"], seed=seed, take=settings["take"], for_model=model_name,
        image_size=settings["image_size"], binarize=binarize, cache=settings["cache"], data_dir=settings["data_dir"],
        download=download, start_epoch=done if keyed else None, drop_remainder=replica_count > 1,
    )
    image_shape = train_ds.image_shape
    settings["image_size"] = list(image_shape[:2])
    if settings.get("conditional") and config is None:
        options = settings["model_options"] = {**options, "num_classes": _class_count(model_name, spec, train_ds)}
    held_images, held_labels, validation_ds = _held_out(dataset, image_shape, settings, binarize, download)

    # The dtype policy is part of the model's config (runs older than that trained in `precision`).
    precision = settings.get("precision") or "float32"
    with scope:  # under a strategy, the variables are made in its scope
        if config is not None:
            model = spec.cls.from_config({"dtype": precision, **config["model_config"]})
        else:
            model = build_model(model_name, image_shape, settings["latent_dim"], seed=seed, dtype=precision, **options)
        compile_model(model, settings["learning_rate"], settings["d_learning_rate"], settings["g_learning_rate"])

    if config is None:
        config = {
            **settings,
            "latent_dim": model.latent_dim,
            "model_config": model.get_config(),
            "data": {
                "image_shape": list(image_shape),
                "binarize": binarize,
                "num_train": train_ds.num_examples,
                "num_held_out": None if held_images is None else len(held_images),
                "class_names": train_ds.class_names,
                "skipped_files": train_ds.skipped_files,
            },
            "backend": keras.backend.backend(),
            "replicas": replica_count,
            "versions": library_versions(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed": [],
        }
    else:
        changed = {key: settings[key] for key in _RESUME_MAY_CHANGE if settings[key] != config.get(key)}
        config.update(changed)
        config["resumed"] = config.get("resumed", []) + [{
            "from_epoch": done, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changed": changed,
            "backend": keras.backend.backend(), "versions": library_versions(),
        }]
    config["epochs"] = epochs
    if chief:
        config["workers"] = replicas.cluster_role().workers if settings.get("distribute") == "multi-worker" else 1
        files.write_json(config, layout.path(out, layout.CONFIG))

    stopper = callbacks.StopOnNonFinite()
    run_callbacks = [stopper, callbacks.NoiseFromEpoch()]
    checkpoint_dir = layout.path(out, layout.CHECKPOINT)
    if chief:
        run_callbacks += [
            callbacks.TensorBoard(out, update_freq=settings["log_every"] or "epoch"),
            callbacks.ImageSummaries(out, images=held_images, labels=held_labels, seed=seed or 0),
        ]
        if held_images is not None and model.has_encoder:
            run_callbacks.append(callbacks.EmbeddingProjector(out, held_images, held_labels, train_ds.class_names))
        run_callbacks += [
            callbacks.RunCheckpoint(out),
            # Last, so that what it records as done has been logged and saved.
            callbacks.BackupAndRestore(checkpoint_dir, double_checkpoint=True, delete_checkpoint=False),
        ]
    else:  # restores the chief's checkpoint (on a file system shared with the chief, as tf.distribute expects)
        run_callbacks.append(callbacks.BackupAndRestore(checkpoint_dir, read_only=True))
    try:
        model.fit(train_ds, epochs=epochs, validation_data=validation_ds, callbacks=run_callbacks, verbose=verbose,
                  steps_per_epoch=train_ds.steps_per_epoch if keyed else None, shuffle=False)  # the pipeline shuffles
    except Exception as err:  # noqa: BLE001 - only a failure to read the data is translated, the rest goes on
        kept = completed_epochs(out)
        lost = _cluster_failure(err)
        if lost is not None:
            raise ValueError(
                f"a worker of the cluster stopped ({lost}); training stopped ({out} keeps "
                f"{'epoch ' + str(kept) if kept else 'no trained epoch'}). Restart every worker with the same command "
                f"and --resume: zoo train {model_name} --out {out} --epochs {epochs} --distribute multi-worker --resume"
            ) from None
        problem = _data_failure(err, train_ds)
        if problem is None:
            raise
        raise ValueError(
            f"{problem}; training stopped ({out} keeps {'epoch ' + str(kept) if kept else 'no trained epoch'}). "
            f"Fix or remove the file, then run the same command{' with --resume' if kept else ''} again."
        ) from None
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM through the CLI ("terminated")
        saved = completed_epochs(out)
        kept = (f"{out} keeps the model and optimizer state after epoch {saved} of {epochs}" if saved else
                f"no epoch of {out} was completed, so no trained state was kept")
        raise Interrupted(
            f"{str(err) or 'interrupted'}; {kept}. "
            f"Continue with: zoo train {model_name} --out {out} --epochs {epochs} --resume"
        ) from None
    if stopper.stopped_at is not None:
        epoch, step, name, value = stopper.stopped_at
        kept = completed_epochs(out)
        raise ValueError(
            f"training diverged: {name} became {value} at epoch {epoch + 1}, step {step + 1}; the non-finite weights "
            f"were not saved ({out} keeps {'epoch ' + str(kept) if kept else 'no trained epoch'}). Likely causes: a "
            f"learning rate too high (it was {settings['learning_rate']:g}; try a smaller --lr) or input pixels "
            "outside [0, 1]."
        )
    if not chief:
        return model
    if not os.path.exists(layout.path(out, layout.MODEL)):
        _io.save_model(model, layout.path(out, layout.MODEL))  # nothing was left to train
    count = 64 if model.num_classes is None else 8 * min(model.num_classes, 16)  # conditional: a row per class
    save_grid(keras.ops.convert_to_numpy(generate_images(model, count, seed=0)), layout.path(out, layout.SAMPLES), ncols=8)
    return model
