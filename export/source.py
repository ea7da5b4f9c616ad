"""What an export takes from a genzoo model: its generative half, checked.

`GenerativeHalf.of(model)` finds the network that maps latents to images
(the AE/VAE decoder followed by its sigmoid, the DCGAN generator followed by
(tanh + 1) / 2), refuses anything that is not a trained genzoo model, and
gives the metadata and the Keras reference outputs that the exporters check
their artifacts against.
"""

import dataclasses

import keras
import numpy as np

import zoo
from export import metadata as _metadata
from zoo.callbacks import weights_are_finite
from zoo_common import labels as _labels

# The latents every parity check runs: a batch of one (the dynamic batch really
# works) and a larger batch, from a fixed seed so errors are reproducible.
PARITY_SEED = 0
PARITY_BATCH = 16


class ParityError(ValueError):
    """An exported artifact's outputs differ from the Keras model's beyond the tolerance."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how well it matches the Keras model.

    Attributes:
        path: str. The artifact (a SavedModel directory or an .onnx file).
        format: str. "saved_model" or "onnx".
        precision: str. "fp32", "fp16" or "int8" (the weights; inputs and
            outputs are float32 either way).
        opset: int or None. ONNX opset (None for a SavedModel).
        max_abs_error: float. max |artifact(z) - keras(z)| over the parity
            latents (batches of 1 and 16, seed 0), images in [0, 1]. None for
            int8, which is judged by its samples' FID instead (export.int8).
        tolerance: float. The bound `max_abs_error` was checked against
            (None for int8).
        size_bytes: int. Size on disk (all files of a SavedModel).
        metadata: dict. The metadata stored in the artifact.
    """

    path: str
    format: str
    precision: str
    opset: object
    max_abs_error: float
    tolerance: float
    size_bytes: int
    metadata: dict

    def to_dict(self):
        return dataclasses.asdict(self)


def parity_latents(latent_dim):
    """The fixed latents of the parity checks: [(1, latent_dim), (PARITY_BATCH, latent_dim)] float32."""
    z = np.random.default_rng(PARITY_SEED).standard_normal((PARITY_BATCH, latent_dim)).astype(np.float32)
    return [z[:1], z]


def max_abs_error(got, want):
    """max |got - want| as a float; inf when shapes differ or any value is not finite."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape or not (np.all(np.isfinite(got)) and np.all(np.isfinite(want))):
        return float("inf")
    return float(np.max(np.abs(got - want))) if got.size else 0.0


def check_parity(error, tolerance, what):
    """Raise ParityError unless 0 <= error <= tolerance (NaN and inf fail)."""
    if not error <= tolerance:
        raise ParityError(
            f"{what} differs from the Keras model by max-abs {error:.3g} on the parity latents, "
            f"above the tolerance {tolerance:.3g}; nothing was written."
        )


class GenerativeHalf:
    """The latent -> image half of a genzoo model, as the exporters see it.

    Use `GenerativeHalf.of(model)`; it raises TypeError for anything but a
    genzoo Autoencoder, VAE or DCGAN and ValueError for a model that was
    never trained (unless `allow_untrained=True`).
    """

    def __init__(self, model, training_steps):
        self.model = model
        self.training_steps = training_steps
        self.latent_dim = int(model.latent_dim)
        self.image_shape = tuple(int(d) for d in model.image_shape)
        self.kind, self.has_encoder = model.kind, model.has_encoder
        self.num_classes = model.num_classes  # a conditional model's: its artifacts take `labels` too

    @classmethod
    def of(cls, model, allow_untrained=False):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                f"export traces the model with TensorFlow, but Keras runs on {keras.backend.backend()!r}. "
                "A .keras file loads on any backend: save the model (model.save('model.keras')) and export it "
                "with `zoo export RUN_DIR` (which runs on TensorFlow), or with KERAS_BACKEND=tensorflow."
            )
        if not isinstance(model, zoo.GenerativeModel):
            raise TypeError(
                "export takes a genzoo model (zoo.Autoencoder, zoo.VAE, zoo.DCGAN or another zoo.GenerativeModel); "
                f"got {type(model).__module__}.{type(model).__qualname__}. "
                "Load a run with export.load_run(RUN_DIR) or keras.saving.load_model after `import zoo`."
            )
        if not model.built:
            raise ValueError(f"{type(model).__name__} {model.name!r} is not built; nothing to export.")
        if not weights_are_finite(model):
            raise ValueError(
                f"{type(model).__name__} {model.name!r} has NaN/inf weights (training diverged?); nothing exported. "
                "Retrain it (a lower learning rate, inputs in [0, 1]) or export a copy saved before it diverged."
            )
        steps = model.training_steps
        if not allow_untrained and not steps:
            state = "was never compiled" if steps is None else "has taken no optimizer step"
            raise ValueError(
                f"{type(model).__name__} {model.name!r} {state}: its weights are the random initial ones. "
                "Train it first (model.fit or `zoo train`), or pass allow_untrained=True to export it anyway."
            )
        return cls(model, steps)

    # -- the exported computations (keras ops only; traced by tf.function) ----
    def generate(self, z, labels=None):
        """Latents (and a conditional model's labels) -> images in [0, 1], exactly the model's public generate."""
        return self.model.generate(z) if self.num_classes is None else self.model.generate(z, labels)

    def encode(self, images, labels=None):
        """Images in [0, 1] -> {"code"} (AE) or {"mean", "log_var"} (VAE; conditional: with the labels)."""
        return self.model.encode_named(images, labels)

    def reference(self, z, labels=None):
        """The Keras model's images for latents `z` (and labels), as numpy."""
        return keras.ops.convert_to_numpy(self.generate(np.asarray(z, np.float32), labels))

    def parity_labels(self, n):
        """The labels the parity checks feed a conditional model with `n` latents: 0, 1, ..., int64; else None."""
        return None if self.num_classes is None else _labels.every_class(n, self.num_classes)

    def metadata(self, artifact_format, dataset=None, **extra):
        """The metadata object stored in the artifact (see export.metadata)."""
        import tensorflow as tf

        meta = {
            "schema_version": _metadata.SCHEMA_VERSION,
            "format": artifact_format,
            "model": self.kind,
            "model_class": type(self.model).__name__,
            "model_config": _json_safe(self.model.get_config()),
            "latent_dim": self.latent_dim,
            "latent_prior": "standard_normal" if self.model.has_prior else "none",
            "image_shape": list(self.image_shape),
            "layout": "NHWC",
            "value_range": list(_metadata.VALUE_RANGE),
            "input_name": _metadata.INPUT_NAME,
            "num_classes": self.num_classes,
            "output_name": _metadata.OUTPUT_NAME,
            "dataset": dataset,
            "training_steps": self.training_steps,
            "genzoo_version": zoo.__version__,
            "versions": {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__},
        }
        if self.num_classes is not None:
            meta["labels_name"] = _metadata.LABELS_NAME
        meta.update(extra)
        return meta


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value
