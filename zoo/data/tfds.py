"""The TFDS source (`NAME` or `tfds:NAME`): a TensorFlow Datasets image dataset,
prepared from `data_dir` or downloaded, with a clear message on a machine that
cannot download it."""

import difflib
import os

from zoo.data.source import SPLITS, UNLABELLED, Source

# Where TFDS downloads from; probed before a download so that an offline
# machine gets an answer at once instead of after minutes of retries.
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


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


def tfds_source(name, split, holdout, take, shuffle, seed, cache, data_dir, download):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    import zoo.data  # for the probe, which tests replace as `zoo.data._can_download`

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
        if not zoo.data._can_download():
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

    return Source(ds, decode, n if n >= 0 else None, shape, list(label.names) if has_label else None, in_memory=False)
