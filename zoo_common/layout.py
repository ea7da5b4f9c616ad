"""The one place that names the files of a `zoo train` run directory.

    model.keras          the model with its optimizer state (after every epoch)
    config.json          every setting of the run, the data, library versions
    history.json         per-epoch losses and learning rates, across resumes
    samples.png          a grid of generated images (at the end)
    eval.json            `zoo evaluate`'s figures
    checkpoint/          Keras' BackupAndRestore state, for `--resume`
    train/ validation/   TensorBoard scalars, per step and per epoch
    images/              TensorBoard image summaries, every epoch
    projector/           TensorBoard projector export of held-out codes (AE/VAE)
    export/              `zoo export`'s SavedModel and ONNX files
"""

import contextlib
import os

MODEL = "model.keras"
CONFIG = "config.json"
HISTORY = "history.json"
SAMPLES = "samples.png"
EVAL = "eval.json"
CHECKPOINT = "checkpoint"
TRAIN_LOGS = "train"
VALIDATION_LOGS = "validation"
IMAGES = "images"
PROJECTOR = "projector"
EXPORT = "export"

# What `zoo train` writes (and `--overwrite` may replace).
RUN_FILES = (MODEL, CONFIG, HISTORY, SAMPLES)
RUN_DIRS = (CHECKPOINT, TRAIN_LOGS, VALIDATION_LOGS, IMAGES, PROJECTOR)
# Any of these marks a directory as holding a run.
RUN_MARKERS = (MODEL, CONFIG, CHECKPOINT)


def path(run_dir, name):
    """The path of `name` (one of the constants above) in `run_dir`."""
    return os.path.join(os.fspath(run_dir), name)


def holds_run(run_dir):
    return any(os.path.exists(path(run_dir, name)) for name in RUN_MARKERS)


TEMPORARY = ".tmp-*"  # zoo_common.files' temporary names

# What a run writes inside each of its folders (TensorBoard events, Keras'
# BackupAndRestore state, the projector's files), and the temporary files of
# an interrupted atomic write.
_OWN_PATTERNS = {
    CHECKPOINT: ("latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json",
                 "training_metadata.json.bkp", "*.weights.h5", TEMPORARY),
    TRAIN_LOGS: ("events.out.tfevents.*",),
    VALIDATION_LOGS: ("events.out.tfevents.*",),
    IMAGES: ("events.out.tfevents.*",),
    PROJECTOR: ("events.out.tfevents.*", "projector_config.pbtxt", "metadata.tsv", "sprite.png", "codes.tsv", TEMPORARY),
}


def foreign_files(run_dir):
    """Paths inside the run's folders that no run writes (sorted); [] when they are all genzoo's."""
    import fnmatch

    found = []
    for folder, patterns in _OWN_PATTERNS.items():
        top = path(run_dir, folder)
        if os.path.lexists(top) and not os.path.isdir(top) or os.path.islink(top):
            found.append(top)
            continue
        for root, dirs, names in os.walk(top):
            for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                where = os.path.join(root, name)
                if root != top or not any(fnmatch.fnmatch(name, p) for p in patterns):
                    found.append(where)
    for name in RUN_FILES:
        if os.path.isdir(path(run_dir, name)) and not os.path.islink(path(run_dir, name)):
            found.append(path(run_dir, name))
    return sorted(found)


LOCK = ".lock"


@contextlib.contextmanager
def locked(run_dir):
    """Hold `run_dir`'s lock for the block: a second process that asks for it
    gets one clear ValueError instead of two trainings writing one directory.
    Creates `run_dir` if needed, and removes it again if the block fails
    having written nothing there. (An advisory lock of the operating system,
    released when the process ends, however it ends.)"""
    import fcntl

    run_dir = os.fspath(run_dir)
    created = not os.path.isdir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    lock_path = path(run_dir, LOCK)
    handle = open(lock_path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        owner = _read_owner(lock_path)
        raise ValueError(
            f"{run_dir} is in use by another `zoo train`{f' (process {owner})' if owner else ''}; wait for it to "
            "finish, stop it, or choose another --out."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield run_dir
    finally:
        os.remove(lock_path)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        if created and not os.listdir(run_dir):
            os.rmdir(run_dir)


def _read_owner(lock_path):
    try:
        with open(lock_path) as f:
            return f.read().strip()
    except OSError:
        return ""


def remove_temporary(run_dir):
    """Remove the temporary files of an interrupted atomic save (genzoo's `.tmp-*`) from the run and its folders."""
    import fnmatch
    import shutil

    for folder in ("",) + RUN_DIRS:
        where = path(run_dir, folder) if folder else os.fspath(run_dir)
        if not os.path.isdir(where):
            continue
        for name in os.listdir(where):
            if fnmatch.fnmatch(name, TEMPORARY):
                target = os.path.join(where, name)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    os.remove(target)
