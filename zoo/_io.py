"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file."""

import json
import os

# The one atomic-write helper of the project lives in the (Keras-free) export layer.
from export import _files


def _replace_or_clean(tmp, path, write):
    try:
        write(tmp)
        _files.move_into_place(tmp, path)
    except BaseException:
        _files.remove(tmp)
        raise
    return path


def write_json(data, path):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")

    return _replace_or_clean(_files.temp_file_beside(path, ".json"), path, write)


def save_model(model, path):
    """`model.save(path)` through a temporary `.keras` file and an atomic rename."""
    return _replace_or_clean(_files.temp_file_beside(path, ".keras"), path, lambda tmp: model.save(tmp))


def write_text(text, path):
    """Write `text` to `path` through a temporary file and an atomic rename."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    return _replace_or_clean(_files.temp_file_beside(path, os.path.splitext(path)[1]), path, write)


def read_json(path, default=None):
    """The JSON content of `path`, or `default` when the file does not exist."""
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)
