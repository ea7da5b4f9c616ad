"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file."""

import json
import os
import tempfile


def _temp_beside(path, suffix):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    # mkstemp makes 0600 files; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def _replace_or_clean(tmp, path, write):
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(data, path):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")

    return _replace_or_clean(_temp_beside(path, ".json"), path, write)


def save_model(model, path):
    """`model.save(path)` through a temporary `.keras` file and an atomic rename."""
    return _replace_or_clean(_temp_beside(path, ".keras"), path, lambda tmp: model.save(tmp))


def write_text(text, path):
    """Write `text` to `path` through a temporary file and an atomic rename."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    return _replace_or_clean(_temp_beside(path, os.path.splitext(path)[1]), path, write)


def read_json(path, default=None):
    """The JSON content of `path`, or `default` when the file does not exist."""
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)
