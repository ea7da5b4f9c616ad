"""The `folder:DIR` source: a folder of PNG/JPEG/BMP/GIF images, each checked
with Pillow (unreadable files are skipped with a warning) and decoded by TF."""

import os
import warnings
import zlib

from zoo.data.source import SPLITS, UNLABELLED, Source, check_split

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Formats tf.io.decode_image reads (MPO is a multi-picture JPEG).
_DECODABLE_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _image_files(base):
    files = []
    for root, dirs, names in os.walk(base, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(
            os.path.join(root, n) for n in sorted(names)
            if not n.startswith(".") and n.lower().endswith(IMAGE_EXTENSIONS)
        )
    return files


def _inspect_image(path):
    """(size (w, h), mode, None) for a file Pillow reads in full, else (None, None, reason)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            size, mode, fmt = im.size, im.mode, im.format
            if fmt not in _DECODABLE_FORMATS:
                return None, None, f"format {fmt} is not PNG, JPEG, BMP or GIF"
            if fmt == "BMP" and mode in ("1", "P"):
                # TensorFlow's BMP decoder fails on 1-bit files and reads colour-palette indices as grey levels.
                return None, None, (f"a {'1-bit' if mode == '1' else 'colour-palette'} BMP, which TensorFlow cannot "
                                    "decode correctly; convert it to PNG")
            if fmt in ("JPEG", "MPO"):
                # Decode at 1/8 scale: still reads every byte, so truncation shows.
                im.draft(mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
            im.load()
        return size, mode, None
    except Exception as err:  # noqa: BLE001 - any failure means "skip this file"
        return None, None, f"{type(err).__name__}: {err}"


def _scan_images(paths, wanted=None):
    """Check `paths` with Pillow, in order, until `wanted` readable ones are found.

    Returns (readable [(path, (w, h), mode)], unreadable [(path, reason)]).
    """
    from concurrent.futures import ThreadPoolExecutor

    good, bad = [], []
    chunk = max(256, 2 * (wanted or 0))
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(paths), chunk):
            part = paths[start : start + chunk]
            for path, (size, mode, reason) in zip(part, pool.map(_inspect_image, part)):
                if reason is None:
                    good.append((path, size, mode))
                else:
                    bad.append((path, reason))
            if wanted is not None and len(good) >= wanted:
                return good[:wanted], bad
    return good, bad


def folder_source(directory, split, holdout, take, channels):
    import tensorflow as tf

    check_split(f"folder:{directory}", split)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"folder:{directory}: no such directory.")
    subdirs = {d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))}
    if {"train", "test"} <= subdirs:
        base = os.path.join(directory, split)
        files = _image_files(base)
        every_file = [os.path.relpath(p, os.path.join(directory, s)) for s in SPLITS
                      for p in _image_files(os.path.join(directory, s))]
    else:
        base = directory
        files = _image_files(base)
        every_file = [os.path.relpath(p, base) for p in files]
        # A stable hash of the relative path: the same files stay held out
        # on every machine and when new files are added.
        cut = holdout * 10_000
        files = [p for p in files if (zlib.crc32(os.path.relpath(p, base).encode()) % 10_000 < cut) == (split == "test")]
    if not files:
        if not _image_files(directory):
            raise ValueError(
                f"folder:{directory} holds no image files ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)."
            )
        raise ValueError(f"folder:{directory} has no images in its {split!r} split; add more images or lower holdout.")
    if take is not None:
        # Sorted paths would give `take` images of the first class only; a
        # fixed hash order gives a mixed subset, the same on every machine.
        files = sorted(files, key=lambda p: (zlib.crc32(os.path.relpath(p, base).encode()), p))
    readable, unreadable = _scan_images(files, take)
    readable.sort()
    if unreadable:
        path, reason = unreadable[0]
        warnings.warn(
            f"folder:{directory}: skipped {len(unreadable)} unreadable image file(s) of {len(unreadable) + len(readable)} "
            f"checked; first: {path} ({reason}).",
            stacklevel=3,
        )
    if not readable:
        raise ValueError(f"folder:{directory}: none of its {len(files)} image files could be read.")

    paths = [p for p, _, _ in readable]
    tops = [os.path.relpath(p, base).split(os.sep) for p in paths]
    # Classes come from the files of every split, so a label means the same class in each.
    class_names = sorted({rel.split(os.sep)[0] for rel in every_file if os.sep in rel}) or None
    index = {name: i for i, name in enumerate(class_names or [])}
    labels = [index[parts[0]] if len(parts) > 1 else UNLABELLED for parts in tops]
    if channels is None:
        channels = 1 if all(mode in _GREY_MODES for _, _, mode in readable) else 3
    sizes = {size for _, size, _ in readable}
    height, width = (sizes.pop()[::-1] if len(sizes) == 1 else (None, None))

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, dtype=tf.uint8, expand_animations=False)
        image.set_shape([None, None, channels])
        return image, label

    def first_undecodable():
        """(path, reason) of the first file TensorFlow's decoder refuses (after a failure of the pipeline), or None."""
        for path in paths:
            try:
                decode(tf.constant(path), tf.constant(0, tf.int64))
            except (tf.errors.OpError, ValueError) as err:
                return path, (getattr(err, "message", None) or str(err)).strip().splitlines()[0]
        return None

    items = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(labels, tf.int64)))
    return Source(items, decode, len(paths), (height, width, channels), class_names, in_memory=True,
                  skipped_files=len(unreadable), first_undecodable=first_undecodable)
