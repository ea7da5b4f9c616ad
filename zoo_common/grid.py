"""Image grids as PNG, with numpy and Pillow only (no TensorFlow, no Keras),
so the training code and the TF-free generator runtime share one writer."""

import math

import numpy as np

from zoo_common import files as _files


def to_uint8(images):
    """float images in [0, 1] (NHWC or HWC) -> uint8 in [0, 255], values clipped."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def make_grid(images, ncols=None, padding=2, min_cell=32):
    """Tile a batch (N, H, W, C) of [0, 1] images into one uint8 image (rows, cols, C).

    Cells are enlarged by an integer factor (nearest neighbour) until they are
    at least `min_cell` pixels high, so 8x8 digits stay visible.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"make_grid expects images of shape (N, H, W, 1 or 3); got {images.shape}.")
    n, height, width, channels = images.shape
    scale = max(1, math.ceil(min_cell / height))
    cells = to_uint8(images)
    if scale > 1:
        cells = cells.repeat(scale, axis=1).repeat(scale, axis=2)
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    ch, cw = height * scale, width * scale
    grid = np.full((nrows * (ch + padding) + padding, ncols * (cw + padding) + padding, channels), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = padding + r * (ch + padding), padding + c * (cw + padding)
        grid[top : top + ch, left : left + cw] = cells[i]
    return grid


def save_png(image, path):
    """Write a uint8 (H, W, C) array as PNG atomically (a temp file, then rename)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    tmp = _files.temp_file_beside(path, suffix=".png")
    try:
        Image.fromarray(image).save(tmp, format="PNG")
        _files.move_into_place(tmp, path)
    except BaseException:
        _files.remove(tmp)
        raise
    return path


def save_grid(images, path, ncols=None):
    """Tile [0, 1] images into a grid and write it as PNG. Returns `path`."""
    return save_png(make_grid(images, ncols=ncols), path)
