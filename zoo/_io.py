"""Saving a Keras model atomically (the JSON and text helpers are zoo_common.files)."""

from zoo_common import files


def save_model(model, path):
    """`model.save(path)` through a temporary `.keras` file and an atomic rename."""
    return files.write_with(path, lambda tmp: model.save(tmp), ".keras")
