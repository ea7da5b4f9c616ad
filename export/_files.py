"""Atomic writes of export artifacts (one file or one directory), standard library only.

An artifact is written under a temporary name beside its target and renamed
into place only after every check passed, so a failed or interrupted export
leaves nothing behind, and an existing artifact is replaced only on request.
"""

import os
import shutil
import tempfile


def refuse_existing(path, overwrite, flag="overwrite=True"):
    """Raise FileExistsError if `path` exists and `overwrite` is false."""
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass {flag} to replace it.")


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
            shutil.rmtree(path)
        os.replace(tmp, path)
    return path


def size_bytes(path):
    """Size of a file, or the total size of the files under a directory."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
    )
