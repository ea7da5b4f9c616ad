"""Export the generative half of a genzoo model as a TensorFlow SavedModel."""

import os

import keras
import numpy as np

from zoo_common import files as _files
from export import metadata as _metadata
from export.source import ExportResult, GenerativeHalf, check_parity, max_abs_error, parity_latents

FP32_TOLERANCE = 1e-5


def to_saved_model(model, path, *, dataset=None, overwrite=False, allow_untrained=False, tolerance=FP32_TOLERANCE):
    """Write the generative half of `model` as a SavedModel directory at `path`.

    Signatures (`saved_model_cli show --all --dir PATH` lists them):
    - `serving_default`: input `z` float32 [None, latent_dim] -> output
      `images` float32 [None, H, W, C] in [0, 1] (dynamic batch);
    - `encode` (AE/VAE only): input `images` float32 [None, H, W, C] in [0, 1]
      -> `code` (AE) or `mean` and `log_var` (VAE).

    Only the networks the signatures use are saved (a DCGAN's discriminator
    and every optimizer stay behind). The metadata (`export.metadata`) is
    stored as `assets.extra/genzoo.json` and as the string variable
    `genzoo_metadata`. The directory is written beside `path` under a
    temporary name, reloaded with `tf.saved_model.load`, checked against the
    Keras model on fixed latents, and only then renamed into place.

    Args:
        model: a trained `zoo.Autoencoder`, `zoo.VAE` or `zoo.DCGAN`.
        path: str. The SavedModel directory to create.
        dataset: str or None. Name of the training data, stored in the
            metadata. Defaults to None (unknown).
        overwrite: bool. Replace an existing `path`. Defaults to False
            (FileExistsError).
        allow_untrained: bool. Export a model that never took an optimizer
            step. Defaults to False (ValueError).
        tolerance: float. Largest max-abs difference allowed between the
            reloaded SavedModel and Keras. Defaults to 1e-5.

    Returns:
        ExportResult, with the measured `max_abs_error`.

    Example:
    >>> result = to_saved_model(vae, "vae_savedmodel", dataset="digits")
    >>> images = tf.saved_model.load("vae_savedmodel").signatures["serving_default"](z=z)["images"]
    """
    import tensorflow as tf

    half = GenerativeHalf.of(model, allow_untrained=allow_untrained)
    path = os.fspath(path)
    # --overwrite replaces a SavedModel of ours (it carries genzoo's metadata), nothing else.
    _files.refuse_existing(path, overwrite, ours=_metadata.written_by_genzoo)
    signatures = ["serving_default"] + (["encode"] if half.has_encoder else [])
    meta = half.metadata("saved_model", dataset=dataset, signatures=signatures)
    text = _metadata.dumps(meta)

    # No archive.track(network): the endpoints already capture every variable
    # they read, and tracking the layers as well stores each weight twice.
    archive = keras.export.ExportArchive()
    z_spec = tf.TensorSpec([None, half.latent_dim], tf.float32, name=_metadata.INPUT_NAME)
    images_spec = tf.TensorSpec([None, *half.image_shape], tf.float32, name="images")
    if half.num_classes is None:
        archive.add_endpoint(
            "serving_default", lambda z: {_metadata.OUTPUT_NAME: half.generate(z)}, input_signature=[z_spec]
        )
        if half.has_encoder:
            archive.add_endpoint("encode", half.encode, input_signature=[images_spec])
    else:  # a conditional model: each signature takes the labels too (int64 class indices)
        labels_spec = tf.TensorSpec([None], tf.int64, name=_metadata.LABELS_NAME)
        archive.add_endpoint("serving_default", lambda z, labels: {_metadata.OUTPUT_NAME: half.generate(z, labels)},
                             input_signature=[z_spec, labels_spec])
        if half.has_encoder:
            archive.add_endpoint("encode", half.encode, input_signature=[images_spec, labels_spec])
    archive.add_variable_collection(
        _metadata.SAVED_MODEL_VARIABLE, [tf.Variable(text, trainable=False, name=_metadata.SAVED_MODEL_VARIABLE)]
    )

    tmp = _files.temp_dir_beside(path)
    try:
        archive.write_out(tmp, verbose=False)
        json_path = os.path.join(tmp, _metadata.SAVED_MODEL_FILE)
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        with open(json_path, "w") as f:
            f.write(text + "\n")
        error = _reloaded_error(tmp, half)
        check_parity(error, tolerance, f"The SavedModel written for {path}")
        _files.move_into_place(tmp, path)
    except BaseException:
        _files.remove(tmp)
        raise
    return ExportResult(
        path=path,
        format="saved_model",
        precision="fp32",
        opset=None,
        max_abs_error=error,
        tolerance=tolerance,
        size_bytes=_files.size_bytes(path),
        metadata=meta,
    )


def _reloaded_error(directory, half):
    """max-abs difference between the reloaded SavedModel's signatures and Keras."""
    import tensorflow as tf

    loaded = tf.saved_model.load(directory)
    serve = loaded.signatures["serving_default"]
    errors = []
    for z in parity_latents(half.latent_dim):
        feed, labels = {_metadata.INPUT_NAME: tf.constant(z)}, half.parity_labels(len(z))
        if labels is not None:
            feed[_metadata.LABELS_NAME] = tf.constant(labels)
        got = serve(**feed)[_metadata.OUTPUT_NAME].numpy()
        errors.append(max_abs_error(got, half.reference(z, labels)))
    if half.has_encoder:
        images = np.random.default_rng(1).uniform(size=(4, *half.image_shape)).astype(np.float32)
        feed, labels = {"images": tf.constant(images)}, half.parity_labels(4)
        if labels is not None:
            feed[_metadata.LABELS_NAME] = tf.constant(labels)
        got = loaded.signatures["encode"](**feed)
        want = half.encode(images, labels)
        for name, value in want.items():
            errors.append(max_abs_error(got[name].numpy(), keras.ops.convert_to_numpy(value)))
    return max(errors)
