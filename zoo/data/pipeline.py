"""`load` and `arrays`: one source (see the package docstring) -> a batched,
shuffled, prefetched tf.data pipeline of float32 NHWC images in [0, 1], or
the same as numpy arrays."""

import os
import re

import numpy as np

from zoo import _checks
from zoo.data.digits import digits_arrays
from zoo.data.folder import folder_source
from zoo.data.idx import idx_arrays
from zoo.data.shape import DEFAULT_MIXED_SIZE, crop_resize, model_needs, parse_image_size, set_channels
from zoo.data.source import array_source
from zoo.data.tfds import tfds_source

# Upper bound on the memory a shuffle buffer of decoded images may hold.
_SHUFFLE_BYTES = 256 * 2**20


def _describe(source_name):
    return source_name if ":" in source_name or source_name == "digits" else f"the TFDS dataset {source_name!r}"


def load(source, split="train", batch_size=128, shuffle=True, seed=None, take=None, *, for_model=None,
         image_size=None, channels=None, binarize=None, cache=False, holdout=0.1, data_dir=None, download=True,
         drop_remainder=False, start_epoch=None):
    """Load `source` as a batched, shuffled, prefetched tf.data.Dataset of
    `(images, labels)`: images float32 (batch, H, W, C) in [0, 1], labels
    int64 (batch,), -1 where the source has none.

    Args:
        source: str. `"digits"`, `"idx:DIR"`, `"folder:DIR"`, or a TFDS image
            dataset name (`"mnist"`, `"cifar10"`, `"celeb_a"`, ...; also
            `"tfds:NAME"`). See the `zoo.data` docstring.
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
        start_epoch: int or None. None (the default): one epoch, reshuffled
            every time it is iterated (tf.data's own per-iteration seeds).
            An int: an endless dataset of epochs `start_epoch`,
            `start_epoch + 1`, ..., whose order and binarisation noise
            depend on (`seed`, epoch) alone, so a run resumed at epoch e sees
            exactly the batches the uninterrupted run saw from epoch e on.
            Pass `steps_per_epoch=ds.steps_per_epoch` to `fit`. Needs a seed
            and a source of known size.

    The dataset carries `class_names` (list or None), `num_examples`,
    `image_shape`, `steps_per_epoch` (batches per epoch, None if the size is
    unknown), `skipped_files` (folder files that could not be read) and
    `first_undecodable` (None, or for a folder a function that finds the first
    file TensorFlow cannot decode, to name it after a failure) as attributes. Unreadable folder images are skipped with a warning that
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
    size = parse_image_size(image_size)
    model_shape, binarize_default, factor = model_needs(for_model)
    if model_shape is not None:
        if size is not None and size != model_shape[:2]:
            raise ValueError(f"image_size={size} does not match the model's image_shape {model_shape}.")
        size, channels = model_shape[:2], channels or model_shape[2]
    binarize = binarize_default if binarize is None else bool(binarize)

    if source == "digits":
        images, labels = digits_arrays(split)
        src = array_source(images[:take], labels[:take], [str(d) for d in range(10)])
    elif source.startswith("idx:"):
        images, labels = idx_arrays(os.path.expanduser(source[4:]), split)
        # IDX labels are class indices (MNIST's digits): name them by their number.
        names = [str(i) for i in range(int(labels.max()) + 1)] if len(labels) else None
        src = array_source(images[:take], labels[:take], names)
    elif source.startswith("folder:"):
        src = folder_source(os.path.expanduser(source[7:]), split, holdout, take, channels)
    else:
        name = source[5:] if source.startswith("tfds:") else source
        if os.path.isdir(name):
            raise ValueError(f"source={source!r} is a directory: write 'folder:{name}' (images) or 'idx:{name}' (IDX files).")
        src = tfds_source(name, split, holdout, take, shuffle, seed, cache, data_dir, download)

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
        image = set_channels(image, image.shape[-1], channels)
        if resize:
            image = crop_resize(image, size)
        image = tf.ensure_shape(image, (*size, channels))
        return image, tf.cast(label, tf.int64)

    n = src.num_examples
    if start_epoch is not None:
        start_epoch = _checks.non_negative_int("start_epoch", start_epoch)
        if seed is None or not n:
            raise ValueError("start_epoch needs a seed and a source of known size (epochs are keyed by both).")
    shuffle_items = shuffle and src.in_memory and not cache
    bytes_per_image = size[0] * size[1] * channels * src.items.map(prepare).element_spec[0].dtype.size
    decoded_buffer = max(1, min(n or 10_000, _SHUFFLE_BYTES // bytes_per_image))
    prepared = src.items if shuffle_items else src.items.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        prepared = prepared.cache("" if cache is True else f"{cache}-{re.sub(r'[^A-Za-z0-9_.-]', '_', split)}")

    def to_float(images, labels):
        if images.dtype == tf.uint8:
            images = tf.cast(images, tf.float32) / 255.0
        return images, labels

    def binarized(images, labels, key):
        uniform = tf.random.stateless_uniform(tf.shape(images), seed=key)
        return tf.cast(uniform < images, tf.float32), labels

    def keyed_shuffle(ds, block, key):
        """Shuffle within consecutive blocks of `block` elements, each block by a stateless permutation of (key, block
        index): the order depends on the key alone (tf.data's own shuffle also depends on TensorFlow's global seed and
        on how often the dataset was iterated). One block holds the whole of an in-memory source."""
        def permuted(index, elements):
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(elements[0])[0]),
                                                             seed=tf.stack([key, index]))
            return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(t, order) for t in elements))

        return ds.batch(block).enumerate().flat_map(permuted)

    def one_epoch(key=None):
        """One pass over the data as float batches (not yet binarised), shuffled by tf.data or, given `key`, by it."""
        ds = prepared
        if shuffle:
            block = n if shuffle_items else decoded_buffer
            if key is None:
                ds = ds.shuffle(block, seed=seed, reshuffle_each_iteration=True)
            else:
                ds = keyed_shuffle(ds, block, key)
        if shuffle_items:
            ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size, drop_remainder=drop_remainder).map(to_float, num_parallel_calls=tf.data.AUTOTUNE)

    if start_epoch is None:
        ds = one_epoch()
        if binarize:
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, draws)).map(
                lambda batch, draw: binarized(*batch, tf.stack([draw, tf.constant(0, tf.int64)])),
                num_parallel_calls=tf.data.AUTOTUNE)
    else:
        def keyed_epoch(epoch):
            key = tf.constant(seed, tf.int64) * 1_000_003 + epoch  # this epoch's order and noise
            ds = one_epoch(key)
            if binarize:
                ds = ds.enumerate().map(lambda step, batch: binarized(*batch, tf.stack([key, step])),
                                        num_parallel_calls=tf.data.AUTOTUNE)
            return ds

        ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(keyed_epoch)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    # Across the workers of a MultiWorkerMirroredStrategy each takes its share of every global batch
    # (TensorFlow's default would split by input file, and a dataset with fewer files than workers fails).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    ds.class_names = src.class_names
    ds.num_examples = n
    ds.image_shape = (*size, channels)
    ds.skipped_files = src.skipped_files
    ds.first_undecodable = src.first_undecodable
    ds.steps_per_epoch = (n // batch_size if drop_remainder else -(-n // batch_size)) if n else None
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
