"""What travels inside an exported artifact, and how to read it back.

Standard library only (the ONNX reader imports `onnx` when asked), so the
TF-free runtime can use it. Every artifact carries one JSON object:

- SavedModel: the file `assets.extra/genzoo.json` (the place TF Serving
  reserves for files the graph does not use), and the same text in the string
  variable `genzoo_metadata` of the object `tf.saved_model.load` returns.
- ONNX: the model's `metadata_props` (string -> string): the key `genzoo`
  holds the JSON object, and each top-level field is repeated under its own
  key, as text, for tools such as Netron that show the properties one by one.

The fields (see `REQUIRED`): `model` ("ae", "dae", "vae" or "dcgan"),
`model_class`, `latent_dim`, `latent_prior` ("standard_normal", or "none"
for an autoencoder, whose decoder was never trained on N(0, I) codes),
`image_shape` [H, W, C], `layout` "NHWC", `value_range` [0.0, 1.0],
`input_name` "z", `output_name` "images", `dataset` (None when unknown),
`genzoo_version`, `versions`, `training_steps`, `model_config`, `format`;
ONNX adds `precision`, `opset` and the parity measured at export
(`parity_max_abs_error`, `parity_tolerance`). A conditional model's carry
`num_classes` and `labels_name` "labels": its second input, int64 class
indices [batch] (None and absent for other models).
"""

import json
import os

SCHEMA_VERSION = 1
INPUT_NAME = "z"
# A conditional model's second input: int64 class indices, one per latent.
LABELS_NAME = "labels"
OUTPUT_NAME = "images"
VALUE_RANGE = (0.0, 1.0)
# The key of the whole JSON object in ONNX metadata_props.
ONNX_KEY = "genzoo"
# Inside a SavedModel directory.
SAVED_MODEL_FILE = os.path.join("assets.extra", "genzoo.json")
SAVED_MODEL_VARIABLE = "genzoo_metadata"

REQUIRED = (
    "schema_version",
    "format",
    "model",
    "model_class",
    "latent_dim",
    "latent_prior",
    "image_shape",
    "layout",
    "value_range",
    "input_name",
    "output_name",
    "dataset",
    "genzoo_version",
)


def dumps(metadata):
    """The canonical JSON text of a metadata object."""
    return json.dumps(metadata, sort_keys=True)


def validate(metadata, where):
    """Check that `metadata` is a genzoo metadata object; returns it. ValueError otherwise."""
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: the genzoo metadata is not a JSON object.")
    missing = [key for key in REQUIRED if key not in metadata]
    if missing:
        raise ValueError(f"{where}: the genzoo metadata lacks {', '.join(missing)}; was it written by genzoo's export?")
    if metadata["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"{where}: genzoo metadata schema {metadata['schema_version']!r} is not supported "
            f"(this genzoo reads schema {SCHEMA_VERSION})."
        )
    return metadata


def loads(text, where):
    """Parse and validate the JSON text of a metadata object."""
    try:
        metadata = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: the genzoo metadata is not valid JSON ({err}).") from None
    return validate(metadata, where)


def to_onnx_props(metadata):
    """metadata -> the string -> string map stored in an ONNX model's metadata_props."""
    props = {ONNX_KEY: dumps(metadata)}
    for key, value in metadata.items():
        props[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return props


def set_onnx_props(proto, metadata):
    """Replace the metadata_props of the ONNX ModelProto `proto` with those of `metadata`."""
    del proto.metadata_props[:]
    for key, value in sorted(to_onnx_props(metadata).items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def from_onnx_props(props, where):
    """The string -> string map of an ONNX model's metadata -> metadata (ValueError if absent)."""
    if ONNX_KEY not in props:
        raise ValueError(
            f"{where} has no genzoo metadata (no '{ONNX_KEY}' entry in its metadata_props); "
            "export it with export.to_onnx or `zoo export`."
        )
    return loads(props[ONNX_KEY], where)


def written_by_genzoo(path):
    """Whether `path` is a SavedModel or ONNX file that genzoo's export wrote (it carries our metadata)."""
    try:
        read_metadata(path)
    except (ValueError, OSError):
        return False
    return True


def read_metadata(path):
    """Read the genzoo metadata of an exported SavedModel directory or ONNX file.

    Args:
        path: str. A SavedModel directory written by `export.to_saved_model`
            or an `.onnx` file written by `export.to_onnx`.

    Returns:
        dict: the metadata object (see the module docstring).

    Example:
    >>> read_metadata("runs/digits-vae/export/vae.onnx")["latent_dim"]
    16
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist.")
    if os.path.isdir(path):
        json_path = os.path.join(path, SAVED_MODEL_FILE)
        if not os.path.isfile(json_path):
            raise ValueError(
                f"{path} has no {SAVED_MODEL_FILE}: not a SavedModel written by genzoo's export."
            )
        with open(json_path) as f:
            return loads(f.read(), json_path)
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # onnx raises DecodeError and friends, not a common base.
        raise ValueError(f"{path} is not an ONNX model ({type(err).__name__}: {err}).") from None
    return from_onnx_props({p.key: p.value for p in model.metadata_props}, path)
