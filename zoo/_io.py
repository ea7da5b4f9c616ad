"""Saving a Keras model atomically, and loading one with a clear error (the JSON and text helpers are zoo_common.files)."""

from zoo_common import files


def save_model(model, path):
    """`model.save(path)` through a temporary `.keras` file and an atomic rename."""
    return files.write_with(path, lambda tmp: model.save(tmp), ".keras")


def load_model(path, compile=True):
    """`keras.saving.load_model(path)`, with one clear error for a missing, damaged or foreign file."""
    import os

    import keras

    import zoo  # noqa: F401 - registers the zoo's classes for deserialisation

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (or is not a file); give the model.keras of a run.")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as err:  # noqa: BLE001 - zipfile, h5py, JSON and Keras raise many kinds; name the file
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a readable Keras model ({type(err).__name__}: {reason}); it may be cut short "
                         "or damaged: use the run's checkpoint (zoo train ... --resume rewrites it) or train again.") from None
