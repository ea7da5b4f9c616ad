"""The domain classifier: a small CNN genzoo trains on a dataset's own labels.

Its penultimate layer is the feature space of the domain FID/KID (Inception
features need ImageNet weights and know little about 8x8 or 28x28 digits), and
its predictions give the class histogram of the mode-coverage check. It is
trained once per dataset and cached on disk, keyed by a fingerprint of the
training data and the recipe, so every evaluation of that dataset uses the
same feature space.
"""

import hashlib
import math
import os
import time

import numpy as np

# Bump when the architecture or the recipe changes: old cache entries are then ignored.
RECIPE_VERSION = 2
# The default recipe: at least this many epochs and this many Adam updates
# (MNIST: 6 epochs; the 1,438 bundled digits: 84).
MIN_EPOCHS, MIN_STEPS = 6, 1000
FEATURES_LAYER = "features"


def default_cache_dir():
    """`$GENZOO_CACHE/classifiers`, else `~/.cache/genzoo/classifiers`."""
    root = os.environ.get("GENZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genzoo")
    return os.path.join(root, "classifiers")


def build_network(image_shape, n_classes):
    """Two conv/pool stages, a 128-wide feature layer, dropout, class logits."""
    import keras
    from keras import layers

    images = keras.Input(shape=tuple(image_shape), name="images")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv0")(images)
    x = layers.MaxPooling2D(2, padding="same", name="pool0")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(images, logits, name="domain_classifier")


class DomainClassifier:
    """A trained classifier of one dataset, seen as a feature extractor.

    Args:
        network: keras.Model. Images in [0, 1] -> class logits, with a layer
            named "features" (the penultimate layer).
        test_accuracy: float or None. Accuracy on the dataset's test split.
        info: dict. How it was trained (dataset, epochs, seconds, cache file).

    Example:
    >>> clf = load_or_train("digits", digits_arrays("train"), digits_arrays("test"))
    >>> clf.test_accuracy, clf.features(images).shape   # (0.98.., (n, 128))
    """

    def __init__(self, network, test_accuracy=None, info=None):
        import keras

        self.network = network
        self.test_accuracy = test_accuracy
        self.info = dict(info or {})
        self.image_shape = tuple(network.input_shape[1:])
        self.n_classes = int(network.output_shape[-1])
        self._features = keras.Model(network.input, network.get_layer(FEATURES_LAYER).output)

    def _batches(self, fn, images, batch_size):
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"the domain classifier takes images of shape (n, {', '.join(map(str, self.image_shape))}); "
                f"got {images.shape}."
            )
        from keras import ops

        outputs = [ops.convert_to_numpy(fn(images[i : i + batch_size], training=False))
                   for i in range(0, len(images), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)

    def features(self, images, batch_size=1000):
        """Penultimate-layer activations (n, 128), float32."""
        return self._batches(self._features, images, batch_size)

    def logits(self, images, batch_size=1000):
        return self._batches(self.network, images, batch_size)

    def predict(self, images, batch_size=1000):
        """The most likely class of each image (n,), int64."""
        return self.logits(images, batch_size).argmax(axis=-1).astype(np.int64)

    def accuracy(self, images, labels, batch_size=1000):
        return float(np.mean(self.predict(images, batch_size) == np.asarray(labels).ravel()))


def default_epochs(n_train, batch_size=128):
    """Epochs of the default recipe: `MIN_EPOCHS`, or more to make `MIN_STEPS` updates."""
    return max(MIN_EPOCHS, math.ceil(MIN_STEPS / math.ceil(n_train / batch_size)))


def train(train_data, test_data=None, epochs=None, batch_size=128, seed=0, verbose=0):
    """Train a `DomainClassifier` on (images, labels); report its accuracy on `test_data`.

    `epochs` defaults to `default_epochs(len(images))`.
    """
    import keras

    images, labels = np.asarray(train_data[0], np.float32), np.asarray(train_data[1]).astype(np.int64)
    epochs = epochs or default_epochs(len(images), batch_size)
    n_classes = int(labels.max()) + 1
    keras.utils.set_random_seed(seed)
    network = build_network(images.shape[1:], n_classes)
    # Cosine decay to 0 over the run, so the last epochs settle the weights.
    steps = epochs * math.ceil(len(images) / batch_size)
    network.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    started = time.time()
    network.fit(images, labels, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    info = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "train_seconds": time.time() - started,
            "n_train": int(len(images))}
    classifier = DomainClassifier(network, info=info)
    if test_data is not None:
        classifier.test_accuracy = classifier.accuracy(*test_data)
    return classifier


def fingerprint(images, labels, epochs, seed):
    """A short hash of the training data and the recipe: the cache key."""
    digest = hashlib.sha1()
    for part in (np.ascontiguousarray(images, np.float32), np.ascontiguousarray(labels, np.int64)):
        digest.update(str(part.shape).encode())
        digest.update(part.tobytes())
    digest.update(f"recipe={RECIPE_VERSION};epochs={epochs};seed={seed}".encode())
    return digest.hexdigest()[:16]


def load_or_train(name, train_data, test_data, cache_dir=None, epochs=None, seed=0, verbose=0):
    """The cached classifier of dataset `name`, training (and caching) it on first use.

    Args:
        name: str. Dataset name, recorded with the cached classifier (e.g. "mnist").
        train_data, test_data: (images, labels) arrays; images in [0, 1], NHWC.
        cache_dir: str or None. Defaults to `default_cache_dir()`.
        epochs, seed: the training recipe (part of the cache key); epochs
            defaults to `default_epochs(len(train images))`.

    The returned classifier's `info["cached"]` says whether it came from disk.
    """
    import keras

    from zoo import _io
    from zoo_common import files

    cache_dir = cache_dir or default_cache_dir()
    epochs = epochs or default_epochs(len(train_data[0]))
    # Keyed by the data, not the name: "mnist" from TFDS and "idx:DIR" share one classifier.
    key = f"classifier-{fingerprint(train_data[0], train_data[1], epochs, seed)}"
    model_path, info_path = os.path.join(cache_dir, f"{key}.keras"), os.path.join(cache_dir, f"{key}.json")
    if os.path.exists(model_path) and os.path.exists(info_path):
        try:  # a cache: a damaged entry is trained again, with a word
            info = files.read_json(info_path)
            network = _io.load_model(model_path, compile=False)
            return DomainClassifier(network, info["test_accuracy"], {**info, "cached": True, "path": model_path})
        except (ValueError, KeyError, TypeError) as err:
            import warnings

            warnings.warn(f"the cached domain classifier {model_path} is damaged ({err}); training it again.",
                          stacklevel=2)
    classifier = train(train_data, test_data, epochs=epochs, seed=seed, verbose=verbose)
    info = {**classifier.info, "dataset": str(name), "key": key, "test_accuracy": classifier.test_accuracy,
            "n_test": int(len(test_data[0]))}
    _io.save_model(classifier.network, model_path)
    files.write_json(info, info_path)
    classifier.info = {**info, "cached": False, "path": model_path}
    return classifier
