"""genzoo's export layer: trained decoders and generators -> SavedModel and ONNX,
parity-checked against Keras, plus a TensorFlow-free ONNX runtime.

Importing `export` (or `export.runtime`) loads neither TensorFlow nor Keras;
the exporters load them on first use:

    from export import to_saved_model, to_onnx    # need TensorFlow (lazy)
    from export.runtime import OnnxGenerator      # numpy + onnxruntime only
"""

import importlib

# public name -> module that defines it; resolved on first access.
_LAZY = {
    "to_saved_model": "export.saved_model",
    "to_onnx": "export.onnx_export",
    "ExportResult": "export.source",
    "ParityError": "export.source",
    "load_run": "export.runs",
    "export_run": "export.runs",
    "read_metadata": "export.metadata",
    "OnnxGenerator": "export.runtime",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = list(_LAZY)
