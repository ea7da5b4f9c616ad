"""The `idx:DIR` source: MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST) as arrays."""

import functools
import gzip
import os
import re
import struct

import numpy as np

from zoo.data.source import UNLABELLED, check_split

_IDX_NAME = re.compile(r"^(?:.*-)?(train|t10k|test)-(images|labels)[.-]idx([13])-ubyte(\.gz)?$")


def _read_idx(path):
    """One IDX file of unsigned bytes -> numpy uint8 array of its shape."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read the IDX file {path}: {err}") from None
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] == 0:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (it starts with {data[:4].hex() or 'nothing'}).")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: its header is incomplete.")
    dims = struct.unpack(f">{ndim}i", data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise ValueError(
            f"{path} is truncated or corrupt: its header promises shape {dims} ({int(np.prod(dims))} bytes) "
            f"but it holds {len(data) - header} bytes of data."
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


@functools.lru_cache(maxsize=4)
def _read_idx_cached(path, mtime, size):
    return _read_idx(path)


def idx_arrays(directory, split="train"):
    """The IDX files of `directory` as (images (N, H, W, 1) uint8, labels (N,) int64).

    Labels are -1 when the split has no labels file.
    """
    check_split(f"idx:{directory}", split)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"idx:{directory}: no such directory.")
    found = {}
    for name in sorted(os.listdir(directory)):
        match = _IDX_NAME.match(name)
        if match:
            kind = "test" if match.group(1) in ("t10k", "test") else "train"
            found.setdefault((kind, match.group(2)), os.path.join(directory, name))
    prefix = "train" if split == "train" else "t10k"
    if (split, "images") not in found:
        present = ", ".join(sorted(os.listdir(directory))[:6]) or "nothing"
        raise FileNotFoundError(
            f"idx:{directory} has no {split} images file: expected {prefix}-images-idx3-ubyte.gz "
            f"(the MNIST/Fashion-MNIST/KMNIST layout); the directory holds {present}."
        )

    def read(path):
        stat = os.stat(path)
        return _read_idx_cached(path, stat.st_mtime_ns, stat.st_size)

    images = read(found[(split, "images")])
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{found[(split, 'images')]} holds an array of shape {images.shape}, not images (N, H, W).")
    if (split, "labels") in found:
        labels = read(found[(split, "labels")]).astype(np.int64)
        if labels.shape != (len(images),):
            raise ValueError(
                f"{found[(split, 'labels')]} holds {labels.shape} labels for {len(images)} images "
                f"in {found[(split, 'images')]}; the two files do not belong together."
            )
    else:
        labels = np.full(len(images), UNLABELLED, np.int64)
    return images, labels
