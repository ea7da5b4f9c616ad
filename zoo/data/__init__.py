"""Every dataset source -> one batched tf.data pipeline of float32 NHWC images in [0, 1].

Sources (the `source` argument of `load` and `arrays`):

- `digits`: scikit-learn's bundled 8x8 handwritten digits (offline, 1,797 images).
- `idx:DIR`: a directory of MNIST-format IDX files (`train-images-idx3-ubyte.gz`,
  `train-labels-idx1-ubyte.gz`, `t10k-...`), gzipped or not. MNIST,
  Fashion-MNIST and KMNIST ship in this format.
- `folder:DIR`: a folder of PNG/JPEG/BMP/GIF images, searched recursively. The
  first sub-folder level names the classes (`DIR/cat/x.jpg` has label "cat");
  images directly in DIR have label -1. If DIR holds `train/` and `test/`, they
  are the splits. Unreadable or corrupt files are skipped, and a warning gives
  their count and the first path.
- any other name (or `tfds:NAME`): a TensorFlow Datasets image dataset (`mnist`,
  `fashion_mnist`, `cifar10`, `celeb_a`, ...), read from `data_dir` /
  `TFDS_DATA_DIR` / `~/tensorflow_datasets` and downloaded there if missing.

Every pipeline yields `(images, labels)`: images float32 (batch, H, W, C) in
[0, 1], labels int64 (batch,), -1 where the source has no label. The split
"test" is held-out data for every source: the source's own test split, or a
fixed fraction (`holdout`) of its training data where it has none.
"""

import dataclasses
import difflib
import functools
import gzip
import os
import re
import struct
import warnings
import zlib

import numpy as np

from zoo import _checks

# Fraction of the bundled digits held out as the "test" split.
_DIGITS_TEST_FRACTION = 0.2
SPLITS = ("train", "test")
UNLABELLED = -1
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Formats tf.io.decode_image reads (MPO is a multi-picture JPEG).
_DECODABLE_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
# Size for sources whose images differ in size, when no image_size is given.
DEFAULT_MIXED_SIZE = (64, 64)
# The zoo's models halve the resolution twice with their default filters.
MODEL_SIZE_FACTOR = 4
# Upper bound on the memory a shuffle buffer of decoded images may hold.
_SHUFFLE_BYTES = 256 * 2**20
# Where TFDS downloads from; probed before a download so that an offline
# machine gets an answer at once instead of after minutes of retries.
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


@dataclasses.dataclass
class _Source:
    items: object  # unbatched tf.data.Dataset of cheap items (arrays, paths, TFDS dicts)
    decode: object  # item -> (image uint8 or float32 (H, W, C), label)
    num_examples: object  # int or None
    image_shape: tuple  # (H or None, W or None, C) of the decoded images
    class_names: object = None
    in_memory: bool = True  # items hold the images themselves (a full shuffle is cheap)
    skipped_files: int = 0


# -- digits ---------------------------------------------------------------------


def _split_arrays(images, labels, split, test_fraction, seed=0):
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(len(images) * test_fraction))
    chosen = order[:n_test] if split == "test" else order[n_test:]
    return images[chosen], labels[chosen]


def _check_split(source, split):
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not available for {source!r}; allowed values are 'train' and 'test'.")


def digits_arrays(split="train"):
    """The scikit-learn digits as (images (N, 8, 8, 1) float32 in [0, 1], labels (N,) int64).

    A fixed 80/20 permutation split gives "train" (1,438) and "test" (359).
    """
    from sklearn.datasets import load_digits

    _check_split("digits", split)
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]
    return _split_arrays(images, bunch.target.astype(np.int64), split, _DIGITS_TEST_FRACTION)


def _array_source(images, labels, class_names=None):
    import tensorflow as tf

    return _Source(
        items=tf.data.Dataset.from_tensor_slices((images, labels)),
        decode=lambda image, label: (image, label),
        num_examples=len(images),
        image_shape=tuple(images.shape[1:]),
        class_names=class_names,
    )


# -- idx:DIR --------------------------------------------------------------------

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
    _check_split(f"idx:{directory}", split)
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


# -- folder:DIR -----------------------------------------------------------------


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


def _folder_source(directory, split, holdout, take, channels):
    import tensorflow as tf

    _check_split(f"folder:{directory}", split)
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

    items = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(labels, tf.int64)))
    return _Source(items, decode, len(paths), (height, width, channels), class_names, in_memory=True,
                   skipped_files=len(unreadable))


# -- TFDS -----------------------------------------------------------------------


def _can_download():
    import socket

    try:
        socket.create_connection(_DOWNLOAD_HOST, timeout=5).close()
        return True
    except OSError:
        return False


def _offline_message(name, data_dir, reason):
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return (
        f"the TFDS dataset {name!r} is not in {where} and {reason}. To train offline, either prepare it once "
        f"on a machine with internet (`tfds.load({name!r})` writes ~/tensorflow_datasets/{name}/), copy that "
        f"folder here and pass data_dir=DIR (CLI: --data-dir DIR) or set TFDS_DATA_DIR=DIR; or give the files "
        f"directly: 'idx:DIR' for MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST) or 'folder:DIR' for a "
        f"folder of PNG/JPEG images."
    )


def _tfds_split(splits, split, holdout):
    """Map "train"/"test" to TFDS splits; other names (e.g. "train[:10%]") pass through."""
    if split not in SPLITS or not splits or "test" in splits:
        return split
    if "validation" in splits:
        return "validation" if split == "test" else "train"
    keep = 100 - int(round(100 * holdout))
    return f"train[:{keep}%]" if split == "train" else f"train[{keep}%:]"


def _tfds_source(name, split, holdout, take, shuffle, seed, cache, data_dir, download):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    # Read TFDS_DATA_DIR now: TFDS reads it once, when it is first imported.
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001 - TFDS raises several types for a bad name
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(name.split(":")[0].split("/")[0], known, n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown dataset {name!r}: it is not a TFDS dataset ({str(err).splitlines()[0]}).{hint} "
            "Sources are 'digits', 'idx:DIR', 'folder:DIR' or a TFDS image dataset name such as 'mnist', "
            "'fashion_mnist', 'cifar10' or 'celeb_a'."
        ) from None
    features = builder.info.features
    image_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    if not image_keys:
        raise ValueError(f"the TFDS dataset {name!r} has no image feature (features: {', '.join(features)}).")
    image_key = "image" if "image" in image_keys else image_keys[0]
    label = features["label"] if "label" in features else None
    has_label = isinstance(label, tfds.features.ClassLabel)
    if not builder.is_prepared():
        if not download:
            raise ValueError(_offline_message(name, data_dir, "download=False (--no-download) forbids downloading it"))
        if not _can_download():
            raise ValueError(_offline_message(name, data_dir, f"this machine cannot reach {_DOWNLOAD_HOST[0]} to download it"))
        try:
            builder.download_and_prepare()
        except Exception as err:  # noqa: BLE001
            raise ValueError(_offline_message(name, data_dir, f"downloading it failed ({type(err).__name__}: {err})")) from None
    tfds_split = _tfds_split(builder.info.splits, split, holdout)
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    try:
        ds = builder.as_dataset(
            split=tfds_split, shuffle_files=bool(shuffle and take is None and not cache), read_config=read_config
        )
    except (ValueError, KeyError) as err:
        raise ValueError(
            f"split={split!r} is not available for the TFDS dataset {name!r} "
            f"(splits: {', '.join(builder.info.splits) or 'unknown'}): {err}"
        ) from None
    if take is not None:
        ds = ds.take(take)
    n = int(ds.cardinality())
    shape = tuple(features[image_key].shape)

    def decode(example):
        y = tf.cast(example["label"], tf.int64) if has_label else tf.constant(UNLABELLED, tf.int64)
        return example[image_key], y

    return _Source(ds, decode, n if n >= 0 else None, shape, list(label.names) if has_label else None, in_memory=False)


# -- the pipeline ---------------------------------------------------------------


def _parse_image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        height, width = image_size
        return _checks.positive_int("image_size height", height), _checks.positive_int("image_size width", width)
    except (TypeError, ValueError):
        raise ValueError(f"image_size={image_size!r} must be an integer or (height, width) of positive integers.") from None


def _model_needs(for_model):
    """(image_shape or None, binarize default, size factor) of `for_model` (None, CLI name or model)."""
    if for_model is None:
        return None, False, None
    if isinstance(for_model, str):
        import zoo

        _checks.choice("for_model", for_model, tuple(zoo.MODELS))
        return None, for_model == "vae", MODEL_SIZE_FACTOR
    return tuple(for_model.image_shape), getattr(for_model, "likelihood", None) == "bernoulli", None


def _set_channels(image, have, want):
    import tensorflow as tf

    if have == 4:
        image, have = image[..., :3], 3
    if have == want:
        return image
    if want == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.image.rgb_to_grayscale(image)


def _crop_resize(image, size):
    """Centre-crop to the aspect of `size`, then resize (bilinear, antialiased); keeps the dtype."""
    import tensorflow as tf

    height, width = size
    x = tf.cast(image, tf.float32)
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    crop_h = tf.clip_by_value(tf.cast(tf.round(wf * height / width), tf.int32), 1, h)
    crop_w = tf.clip_by_value(tf.cast(tf.round(hf * width / height), tf.int32), 1, w)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    x = tf.image.resize(x[top : top + crop_h, left : left + crop_w], (height, width), antialias=True)
    if image.dtype == tf.uint8:
        return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
    return tf.clip_by_value(x, 0.0, 1.0)


def _describe(source_name):
    return source_name if ":" in source_name or source_name == "digits" else f"the TFDS dataset {source_name!r}"


def load(source, split="train", batch_size=128, shuffle=True, seed=None, take=None, *, for_model=None,
         image_size=None, channels=None, binarize=None, cache=False, holdout=0.1, data_dir=None, download=True,
         drop_remainder=False):
    """Load `source` as a batched, shuffled, prefetched tf.data.Dataset of
    `(images, labels)`: images float32 (batch, H, W, C) in [0, 1], labels
    int64 (batch,), -1 where the source has none.

    Args:
        source: str. `"digits"`, `"idx:DIR"`, `"folder:DIR"`, or a TFDS image
            dataset name (`"mnist"`, `"cifar10"`, `"celeb_a"`, ...; also
            `"tfds:NAME"`). See the module docstring.
        split: str. `"train"` or `"test"` (held-out data for every source);
            TFDS also takes its own split names and slices ("train[:10%]").
        batch_size: int. Defaults to 128.
        shuffle: bool. Reshuffle every epoch. Defaults to True.
        seed: int or None. Seeds the shuffle and the binarisation, so the
            order is the same in every run. Defaults to None (random).
        take: int or None. Keep only the first `take` examples of the split
            (for smoke runs; from a folder, a fixed subset that mixes the
            classes). Defaults to None (all).
        for_model: None, a CLI model name ("ae", "dae", "vae", "dcgan") or a
            zoo model. A model fixes the default image size and channels to
            its `image_shape`; a name checks that the images fit the models
            (sides divisible by 4). With a Bernoulli VAE ("vae") `binarize`
            defaults to True.
        image_size: int, (height, width) or None. Centre-crop to this aspect
            ratio and resize. Defaults to the source's size, or 64x64 when its
            images differ in size.
        channels: 1, 3 or None. Convert grey <-> RGB. Defaults to the source's.
        binarize: bool or None. Dynamic binarisation: every epoch each pixel
            becomes 1 with probability equal to its grey level, a fresh draw
            (Salakhutdinov & Murray 2008). Defaults to True only for a
            Bernoulli VAE `for_model`.
        cache: bool or str. Cache the decoded, resized images in memory
            (True) or in files with this path prefix (the split name is
            appended). Defaults to False.
        holdout: float. Fraction of the training data held out as "test" by
            sources without a test split (folders, some TFDS datasets).
            Defaults to 0.1.
        data_dir: str or None. TFDS data directory. Defaults to
            `TFDS_DATA_DIR` or `~/tensorflow_datasets`.
        download: bool. Let TFDS download a missing dataset. Defaults to True.
        drop_remainder: bool. Drop the last partial batch. Defaults to False.

    The dataset carries `class_names` (list or None), `num_examples`,
    `image_shape` and `skipped_files` (folder files that could not be read)
    as attributes. Unreadable folder images are skipped with a warning that
    counts them; a missing directory, an unknown name, a TFDS dataset that is
    neither present nor downloadable raise one ValueError or
    FileNotFoundError that says what to do.

    Example:
    >>> ds = load("idx:../shared/datasets/mnist", batch_size=64, seed=0, for_model="vae")
    >>> images, labels = next(iter(ds))  # (64, 28, 28, 1) float32 in {0, 1}, (64,) int64
    """
    import tensorflow as tf

    if not isinstance(source, str) or not source:
        raise ValueError(f"source={source!r} must be a string such as 'digits', 'idx:DIR', 'folder:DIR' or 'mnist'.")
    batch_size = _checks.positive_int("batch_size", batch_size)
    take = None if take is None else _checks.positive_int("take", take)
    if not 0.0 < float(holdout) < 1.0:
        raise ValueError(f"holdout={holdout!r} must be a fraction between 0 and 1.")
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels={channels!r} is not supported; allowed values are 1 and 3.")
    size = _parse_image_size(image_size)
    model_shape, binarize_default, factor = _model_needs(for_model)
    if model_shape is not None:
        if size is not None and size != model_shape[:2]:
            raise ValueError(f"image_size={size} does not match the model's image_shape {model_shape}.")
        size, channels = model_shape[:2], channels or model_shape[2]
    binarize = binarize_default if binarize is None else bool(binarize)

    if source == "digits":
        images, labels = digits_arrays(split)
        src = _array_source(images[:take], labels[:take], [str(d) for d in range(10)])
    elif source.startswith("idx:"):
        images, labels = idx_arrays(os.path.expanduser(source[4:]), split)
        src = _array_source(images[:take], labels[:take])
    elif source.startswith("folder:"):
        src = _folder_source(os.path.expanduser(source[7:]), split, holdout, take, channels)
    else:
        name = source[5:] if source.startswith("tfds:") else source
        if os.path.isdir(name):
            raise ValueError(f"source={source!r} is a directory: write 'folder:{name}' (images) or 'idx:{name}' (IDX files).")
        src = _tfds_source(name, split, holdout, take, shuffle, seed, cache, data_dir, download)

    have_h, have_w, have_c = src.image_shape
    channels = channels or (have_c if have_c in (1, 3) else 3)
    if size is None:
        size = (have_h, have_w) if have_h and have_w else DEFAULT_MIXED_SIZE
    if factor and (size[0] % factor or size[1] % factor):
        fit = (max(factor, size[0] // factor * factor), max(factor, size[1] // factor * factor))
        raise ValueError(
            f"{_describe(source)} gives {size[0]}x{size[1]} images, but the models need a height and width "
            f"divisible by {factor}: pass image_size=(64, 64) (CLI: --image-size 64) to centre-crop and resize, "
            f"or image_size={fit} (--image-size {fit[0]}x{fit[1]})."
        )
    resize = (have_h, have_w) != tuple(size)

    def prepare(*item):
        image, label = src.decode(*item)
        image = _set_channels(image, image.shape[-1], channels)
        if resize:
            image = _crop_resize(image, size)
        image = tf.ensure_shape(image, (*size, channels))
        return image, tf.cast(label, tf.int64)

    n = src.num_examples
    shuffle_items = shuffle and src.in_memory and not cache
    ds = src.items
    if shuffle_items:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    bytes_per_image = size[0] * size[1] * channels * ds.element_spec[0].dtype.size
    decoded_buffer = max(1, min(n or 10_000, _SHUFFLE_BYTES // bytes_per_image))
    if cache:
        ds = ds.cache("" if cache is True else f"{cache}-{re.sub(r'[^A-Za-z0-9_.-]', '_', split)}")
    if shuffle and not shuffle_items:
        ds = ds.shuffle(decoded_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def to_float(images, labels):
        if images.dtype == tf.uint8:
            images = tf.cast(images, tf.float32) / 255.0
        return images, labels

    if binarize:
        noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

        def sample_pixels(batch, draw):
            images, labels = to_float(*batch)
            uniform = tf.random.stateless_uniform(tf.shape(images), seed=tf.stack([draw, tf.constant(0, tf.int64)]))
            return tf.cast(uniform < images, tf.float32), labels

        ds = tf.data.Dataset.zip((ds, noise)).map(sample_pixels, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.class_names = src.class_names
    ds.num_examples = n
    ds.image_shape = (*size, channels)
    ds.skipped_files = src.skipped_files
    return ds


def arrays(source, split="train", limit=None, **kwargs):
    """A split of `source` as numpy (images float32 (N, H, W, C) in [0, 1], labels int64 (N,)).

    In the source's order (no shuffle), at most `limit` examples; other
    keyword arguments as for `load` (image_size, channels, for_model, ...).
    """
    kwargs.setdefault("batch_size", 512)
    ds = load(source, split, shuffle=False, take=limit, **kwargs)
    images, labels = [], []
    for x, y in ds.as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        return np.zeros((0, *ds.image_shape), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(images), np.concatenate(labels)
