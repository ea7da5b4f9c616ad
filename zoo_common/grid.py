"""Images to files, with numpy and Pillow only (no TensorFlow, no Keras), so
the training code and the TF-free generator runtime share one writer: a PNG
grid (of a bounded size), and, streamed chunk by chunk so memory stays that of
one chunk, an `.npy` array or a folder of numbered PNGs. Every writer is
atomic: a temporary name beside the target, renamed into place when complete.
"""

import json
import math
import os
import re

import numpy as np

from zoo_common import files as _files


def to_uint8(images):
    """float images in [0, 1] (NHWC or HWC) -> uint8 in [0, 255], values clipped."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


# The largest PNG grid written: beyond these, viewers refuse or crawl, and a
# grid of that many images is no longer something to look at.
MAX_GRID_IMAGES = 1024
MAX_GRID_SIDE = 16384


def _grid_layout(n, height, width, ncols=None, padding=2, min_cell=32):
    scale = max(1, math.ceil(min_cell / height))
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    ch, cw = height * scale, width * scale
    return scale, ncols, (nrows * (ch + padding) + padding, ncols * (cw + padding) + padding)


def grid_size(n, image_shape, ncols=None, padding=2, min_cell=32):
    """(height, width) in pixels of `make_grid` of `n` images of `image_shape` (H, W, C)."""
    return _grid_layout(n, int(image_shape[0]), int(image_shape[1]), ncols, padding, min_cell)[2]


def check_grid(n, image_shape=None, ncols=None):
    """Raise ValueError unless a grid of `n` images (of `image_shape`, when known) is within
    MAX_GRID_IMAGES images and MAX_GRID_SIDE pixels a side."""
    others = "write an array (-o OUT.npy) or one PNG per image (--format folder -o DIR) instead"
    if n > MAX_GRID_IMAGES:
        raise ValueError(f"-n {n}: a PNG grid holds at most {MAX_GRID_IMAGES:,} images; {others}.")
    if image_shape is not None:
        height, width = grid_size(n, image_shape, ncols)
        if max(height, width) > MAX_GRID_SIDE:
            raise ValueError(f"a grid of {n} images of {image_shape[0]}x{image_shape[1]}"
                             f"{f' in {ncols} columns' if ncols else ''} would be {width}x{height} pixels, "
                             f"over the limit of {MAX_GRID_SIDE:,} a side; choose other --ncols, fewer images, or {others}.")


def make_grid(images, ncols=None, padding=2, min_cell=32):
    """Tile a batch (N, H, W, C) of [0, 1] images into one uint8 image (rows, cols, C).

    Cells are enlarged by an integer factor (nearest neighbour) until they are
    at least `min_cell` pixels high, so 8x8 digits stay visible.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"make_grid expects images of shape (N, H, W, 1 or 3); got {images.shape}.")
    n, height, width, channels = images.shape
    scale, ncols, (rows, cols) = _grid_layout(n, height, width, ncols, padding, min_cell)
    cells = to_uint8(images)
    if scale > 1:
        cells = cells.repeat(scale, axis=1).repeat(scale, axis=2)
    ch, cw = height * scale, width * scale
    grid = np.full((rows, cols, channels), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = padding + r * (ch + padding), padding + c * (cw + padding)
        grid[top : top + ch, left : left + cw] = cells[i]
    return grid


# How genzoo knows its own image files, so that --overwrite replaces only those: a PNG text chunk
# "Software: genzoo", and a comment in an .npy header (numpy reads the header as a Python literal).
_SOFTWARE = "genzoo"
_NPY_MARK = "# written by genzoo"


def _png_mark():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", _SOFTWARE)
    return info


def written_by_genzoo(path):
    """Whether the PNG or .npy file at `path` carries genzoo's mark (a file that cannot be read does not)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        if head.startswith(b"\x93NUMPY"):
            return _NPY_MARK.encode() in head
        from PIL import Image

        with Image.open(path) as image:
            return image.format == "PNG" and getattr(image, "text", {}).get("Software") == _SOFTWARE
    except Exception:  # noqa: BLE001 - unreadable, not an image: not ours
        return False


def _npy_header(dtype, shape):
    """The bytes of a version 1.0 .npy header for `shape` and `dtype`, carrying genzoo's mark."""
    import struct

    header = (f"{{'descr': {np.lib.format.dtype_to_descr(np.dtype(dtype))!r}, 'fortran_order': False, "
              f"'shape': {tuple(shape)!r}, }} {_NPY_MARK}")
    magic = np.lib.format.magic(1, 0)
    pad = -(len(magic) + 2 + len(header) + 1) % 64  # numpy aligns the data to 64 bytes
    text = (header + " " * pad + "\n").encode("latin1")
    return magic + struct.pack("<H", len(text)) + text


def save_png(image, path):
    """Write a uint8 (H, W, C) array as PNG atomically (a temp file, then rename)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    tmp = _files.temp_file_beside(path, suffix=".png")
    try:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=_png_mark())
        _files.move_into_place(tmp, path)
    except BaseException:
        _files.remove(tmp)
        raise
    return path


def save_grid(images, path, ncols=None):
    """Tile [0, 1] images into a grid and write it as PNG. Returns `path`."""
    return save_png(make_grid(images, ncols=ncols), path)


# -- streamed outputs: any number of images, one chunk in memory at a time ----

NPY_DTYPES = ("float32", "uint8")
# The file a folder of numbered PNGs carries, by which genzoo knows the folder as its own.
FOLDER_MANIFEST = "genzoo-images.json"
_NUMBERED_PNG = re.compile(r"^[0-9]+\.png$")


def _as(chunk, dtype):
    return to_uint8(chunk) if dtype == "uint8" else np.ascontiguousarray(chunk, np.float32)


def write_npy(chunks, n, image_shape, path, dtype="float32"):
    """Write `n` images, given as an iterable of (chunk, H, W, C) [0, 1] arrays,
    into one `.npy` array (n, H, W, C) of `dtype` ("float32": as given;
    "uint8": 0-255), appending chunk after chunk so only one chunk is in
    memory. Atomic: nothing is at `path` until every image is written.
    Returns `path`."""
    if dtype not in NPY_DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; allowed values are 'float32' and 'uint8'.")
    shape = (int(n), *(int(d) for d in image_shape))

    def write(tmp):
        written = 0
        with open(tmp, "wb") as f:
            f.write(_npy_header(dtype, shape))
            for chunk in chunks:
                chunk = _as(chunk, dtype)
                if chunk.shape[1:] != shape[1:] or written + len(chunk) > shape[0]:
                    raise ValueError(f"write_npy: got a chunk of shape {chunk.shape} after {written} images; "
                                     f"expected {shape[0]} images of {shape[1:]} in all.")
                f.write(chunk.tobytes())
                written += len(chunk)
        if written != shape[0]:
            raise ValueError(f"write_npy: got {written} images; expected {shape[0]}.")

    return _files.write_with(path, write, ".npy")


def _folder_is_ours(directory):
    """None when every entry of `directory` is genzoo's (its manifest and numbered PNGs), else the first
    entry that is not (the manifest's name when it is missing)."""
    entries = sorted(os.listdir(directory))
    if FOLDER_MANIFEST not in entries:
        return FOLDER_MANIFEST
    try:
        with open(os.path.join(directory, FOLDER_MANIFEST)) as f:
            ours = json.load(f).get("written_by") == "genzoo"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        return FOLDER_MANIFEST
    for name in entries:
        full = os.path.join(directory, name)
        if name != FOLDER_MANIFEST and not (_NUMBERED_PNG.match(name) and os.path.isfile(full)
                                            and not os.path.islink(full)):
            return name
    return None


def check_folder(directory, overwrite, flag="--overwrite"):
    """Raise unless `write_png_folder` may write `directory`: it does not exist, or is an empty folder, or
    (with `overwrite`) a folder that `write_png_folder` wrote and that holds nothing else."""
    if not os.path.lexists(directory) or (os.path.isdir(directory) and not os.listdir(directory)):
        return
    if not os.path.isdir(directory) or os.path.islink(directory):
        raise FileExistsError(f"{directory} exists and is not a folder; genzoo writes its images only into a new "
                              "or empty folder. Choose another path.")
    if not overwrite:
        raise FileExistsError(f"{directory} is a folder that is not empty; choose a new or empty folder, "
                              f"or pass {flag} to replace a folder of images that genzoo wrote.")
    foreign = _folder_is_ours(directory)
    if foreign is not None:
        what = (f"has no {FOLDER_MANIFEST} of genzoo's" if foreign == FOLDER_MANIFEST
                else f"holds {os.path.join(directory, foreign)}, which genzoo did not write")
        raise FileExistsError(f"{directory} {what}, so {flag} does not replace it; nothing was deleted. "
                              "Choose a new or empty folder.")


def write_png_folder(chunks, n, directory, overwrite=False, about=None):
    """Write `n` images, given as an iterable of (chunk, H, W, C) [0, 1] arrays,
    as numbered PNG files (000000.png, 000001.png, ...) in `directory`, with a
    manifest `genzoo-images.json` (n, the names, and `about`).

    The folder is filled under a temporary name beside it and renamed into
    place when complete. It must be new or empty; with `overwrite`, a folder
    that this function wrote (its manifest, numbered PNGs and nothing else)
    is replaced; a folder holding anything else is never touched. Returns
    `directory`.
    """
    check_folder(directory, overwrite)
    width = max(6, len(str(int(n) - 1)))
    tmp = _files.temp_dir_beside(directory)
    try:
        written = 0
        for chunk in chunks:
            if written + len(chunk) > n:
                raise ValueError(f"write_png_folder: got more than the {n} images expected.")
            for image in to_uint8(chunk):
                _write_png(image, os.path.join(tmp, f"{written:0{width}d}.png"))
                written += 1
        if written != n:
            raise ValueError(f"write_png_folder: got {written} images; expected {n}.")
        manifest = {"written_by": "genzoo", "n": int(n), "names": f"{0:0{width}d}.png .. {n - 1:0{width}d}.png",
                    **(about or {})}
        with open(os.path.join(tmp, FOLDER_MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        check_folder(directory, overwrite)  # again: the folder may have changed while the images were made
        if os.path.isdir(directory) and not os.listdir(directory):
            os.replace(tmp, directory)  # rename(2) replaces an empty folder
        else:
            _files.move_into_place(tmp, directory)
    except BaseException:
        _files.remove(tmp)
        raise
    return directory


def _write_png(image, path):
    from PIL import Image

    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path, format="PNG")
