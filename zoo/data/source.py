"""What every source hands the pipeline: the `Source` record, the split names
and the label of unlabelled images."""

import dataclasses

SPLITS = ("train", "test")
UNLABELLED = -1


@dataclasses.dataclass
class Source:
    items: object  # unbatched tf.data.Dataset of cheap items (arrays, paths, TFDS dicts)
    decode: object  # item -> (image uint8 or float32 (H, W, C), label)
    num_examples: object  # int or None
    image_shape: tuple  # (H or None, W or None, C) of the decoded images
    class_names: object = None
    in_memory: bool = True  # items hold the images themselves (a full shuffle is cheap)
    skipped_files: int = 0
    first_undecodable: object = None  # () -> (path, reason) or None: names the file behind a decoding failure


def check_split(source, split):
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not available for {source!r}; allowed values are 'train' and 'test'.")


def array_source(images, labels, class_names=None):
    """A `Source` of in-memory arrays (the digits, IDX files)."""
    import tensorflow as tf

    return Source(
        items=tf.data.Dataset.from_tensor_slices((images, labels)),
        decode=lambda image, label: (image, label),
        num_examples=len(images),
        image_shape=tuple(images.shape[1:]),
        class_names=class_names,
    )
