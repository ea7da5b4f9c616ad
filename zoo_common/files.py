"""Atomic writes (one file or one directory), standard library only.

Everything genzoo writes goes under a temporary name beside its target and is
renamed into place only when complete (and, for exports, checked), so a
failed or interrupted write leaves nothing behind; an existing file is
replaced only on request, and a directory is never replaced by a file.
"""

import json
import os
import shutil
import tempfile


def refuse_existing(path, overwrite, flag="overwrite=True", ours=None):
    """Raise FileExistsError if `path` exists and `overwrite` is false, or if
    `ours(path)` says genzoo did not write what is there (then nothing replaces it)."""
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass {flag} to replace it.")
    if ours is not None and not ours(path):
        raise FileExistsError(f"{path} exists and was not written by genzoo, so {flag} does not replace it; "
                              "move it away or choose another path.")


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def temp_file_beside(path, suffix=""):
    """An empty temporary file in the directory of `path` (created if needed), mode as open() gives."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def temp_dir_beside(path):
    """An empty temporary directory in the directory of `path` (created if needed)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=directory)
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def remove(path):
    """Remove a file or a directory tree if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def move_into_place(tmp, path):
    """Rename `tmp` (file or directory) to `path`, replacing what is there.

    A directory cannot be renamed over a non-empty one, so an existing target
    is first renamed aside and deleted only once the new one is in place.
    """
    if os.path.isdir(tmp) and os.path.lexists(path):
        aside = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(os.path.abspath(path)))
        os.rmdir(aside)
        os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(aside, path)
            raise
        remove(aside)
    else:
        if os.path.isdir(path) and not os.path.islink(path):
            remove(tmp)
            raise IsADirectoryError(f"{path} is a directory; genzoo writes a file there only in place of a file. "
                                    "Give a file name instead.")
        os.replace(tmp, path)
    return path


def size_bytes(path):
    """Size of a file, or the total size of the files under a directory."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
    )


def _replace_or_clean(tmp, path, write):
    try:
        write(tmp)
        move_into_place(tmp, path)
    except BaseException:
        remove(tmp)
        raise
    return path


def write_with(path, write, suffix=None):
    """`write(tmp_path)` a temporary file beside `path`, then rename it into place."""
    suffix = os.path.splitext(path)[1] if suffix is None else suffix
    return _replace_or_clean(temp_file_beside(path, suffix), path, write)


def write_json(data, path):
    """Write `data` as indented JSON to `path`, atomically."""

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")

    return write_with(path, write, ".json")


def write_text(text, path):
    """Write `text` to `path`, atomically."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    return write_with(path, write)


def read_json(path, default=None):
    """The JSON content of `path`, or `default` when the file does not exist; ValueError (naming it) if it is not JSON."""
    if not os.path.exists(path):
        return default
    with open(path) as f:
        try:
            return json.load(f)
        except ValueError as err:  # cut short or not JSON: name the file
            raise ValueError(f"{path} is not valid JSON ({err})") from None
