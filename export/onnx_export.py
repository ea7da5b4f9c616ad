"""Export the generative half of a genzoo model as ONNX, through tf2onnx, rewritten
for onnxruntime's CPU kernels (`export.onnx_graph`), parity-checked.

(Named onnx_export, not onnx, so `import onnx` inside this package still
finds the onnx library.)
"""

import contextlib
import logging
import os

import numpy as np

from zoo_common import files as _files
from export import metadata as _metadata
from export import onnx_graph as _onnx_graph
from export.source import ExportResult, GenerativeHalf, check_parity, max_abs_error, parity_latents

PRECISIONS = ("fp32", "fp16")
TOLERANCES = {"fp32": 1e-5, "fp16": 1e-2}
# The oldest opset the export is tested with; the newest is what tf2onnx supports.
MIN_OPSET = 13


def max_opset():
    """The newest ONNX opset the installed tf2onnx can write."""
    from tf2onnx import constants

    return max(constants.OPSET_TO_IR_VERSION)


def to_onnx(
    model,
    path,
    opset=None,
    precision="fp32",
    *,
    dataset=None,
    overwrite=False,
    allow_untrained=False,
    tolerance=None,
):
    """Write the generative half of `model` as an ONNX file at `path`.

    The graph has one input `z` (float32 [batch, latent_dim], dynamic batch)
    and one output `images` (float32 [batch, H, W, C] in [0, 1]). With
    `precision="fp16"` the weights and the arithmetic are float16 while `z`
    and `images` stay float32 (Cast nodes at the edges), so callers never
    change. The metadata (`export.metadata`) is in the model's
    `metadata_props`, with `graph_rewrites`: how many nodes each rewrite of
    `export.onnx_graph` changed (batch norm folded into the weights, strided
    transposed convolutions as sub-pixel convolutions, ...), which make the
    graph fast in onnxruntime without changing its outputs beyond rounding.

    The file is written beside `path` under a temporary name, validated with
    `onnx.checker` (full check), run in onnxruntime (CPU) on fixed latents
    (batches of 1 and 16) and compared with the Keras model; only then is the
    measured error added to the metadata and the file renamed into place. A
    failed check raises `export.ParityError` (a ValueError) and leaves nothing.

    Args:
        model: a trained `zoo.Autoencoder`, `zoo.VAE` or `zoo.DCGAN`.
        path: str. The .onnx file to create.
        opset: int or None. ONNX opset, from 13 to the newest tf2onnx writes.
            Defaults to None: tf2onnx's preferred opset.
        precision: str. "fp32" or "fp16". Defaults to "fp32".
        dataset: str or None. Name of the training data, for the metadata.
        overwrite: bool. Replace an existing `path`. Defaults to False
            (FileExistsError).
        allow_untrained: bool. Export a model that never took an optimizer
            step. Defaults to False (ValueError).
        tolerance: float or None. Largest max-abs difference allowed between
            onnxruntime and Keras. Defaults to 1e-5 (fp32) or 1e-2 (fp16).

    Returns:
        ExportResult, with the measured `max_abs_error`.

    Example:
    >>> result = to_onnx(gan, "dcgan.onnx", precision="fp16")
    >>> result.max_abs_error <= 1e-2
    True
    """
    import onnx

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not supported; allowed values are 'fp32' and 'fp16'.")
    opset = check_opset(opset)
    tolerance = TOLERANCES[precision] if tolerance is None else float(tolerance)
    half = GenerativeHalf.of(model, allow_untrained=allow_untrained)
    path = os.fspath(path)
    # --overwrite replaces an ONNX file of ours (it carries genzoo's metadata), nothing else.
    _files.refuse_existing(path, overwrite, ours=_metadata.written_by_genzoo)

    proto, opset = _convert(half, opset)
    # Exact rewrites (batch norm folded, sub-pixel convolutions, ...); the parity check below covers them too.
    proto, rewrites = _onnx_graph.optimize(proto)
    if precision == "fp16":
        proto = _to_fp16(proto)
    meta = half.metadata(
        "onnx", dataset=dataset, precision=precision, opset=opset, graph_rewrites=rewrites, **_onnx_versions()
    )
    _metadata.set_onnx_props(proto, meta)

    tmp = _files.temp_file_beside(path, suffix=".onnx")
    try:
        onnx.save(proto, tmp)
        onnx.checker.check_model(tmp, full_check=True)
        error = _runtime_error(tmp, half)
        check_parity(error, tolerance, f"The ONNX model written for {path} ({precision}, opset {opset})")
        meta.update(parity_max_abs_error=error, parity_tolerance=tolerance)
        _metadata.set_onnx_props(proto, meta)
        onnx.save(proto, tmp)
        _files.move_into_place(tmp, path)
    except BaseException:
        _files.remove(tmp)
        raise
    return ExportResult(
        path=path,
        format="onnx",
        precision=precision,
        opset=opset,
        max_abs_error=error,
        tolerance=tolerance,
        size_bytes=_files.size_bytes(path),
        metadata=meta,
    )


def check_opset(opset):
    """`opset` if the export supports it (None: tf2onnx's choice), else ValueError."""
    if opset is None:
        return None
    newest = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset={opset!r} is not supported; choose an integer from {MIN_OPSET} to {newest}.")
    return int(opset)


@contextlib.contextmanager
def _quiet(name):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _convert(half, opset):
    """tf2onnx conversion of z -> images; returns (ModelProto, opset used)."""
    import tensorflow as tf
    import tf2onnx

    specs = [tf.TensorSpec([None, half.latent_dim], tf.float32, name=_metadata.INPUT_NAME)]
    if half.num_classes is None:
        @tf.function(input_signature=specs)
        def generate(z):
            return {_metadata.OUTPUT_NAME: half.generate(z)}
    else:  # a conditional model: the class of each latent, int64
        specs.append(tf.TensorSpec([None], tf.int64, name=_metadata.LABELS_NAME))

        @tf.function(input_signature=specs)
        def generate(z, labels):
            return {_metadata.OUTPUT_NAME: half.generate(z, labels)}

    with _quiet("tf2onnx"):
        proto, _ = tf2onnx.convert.from_function(generate, input_signature=specs, opset=opset)
    graph = proto.graph
    names = ([i.name for i in graph.input], [o.name for o in graph.output])
    expected = ([spec.name for spec in specs], [_metadata.OUTPUT_NAME])
    if names != expected:
        raise RuntimeError(f"tf2onnx named the graph's inputs and outputs {names}, expected {expected}.")
    # tf2onnx calls the free batch dimension "unk__N"; give it a readable name.
    for value in (*graph.input, graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    used = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return proto, int(used)


def _to_fp16(proto):
    """Weights and arithmetic in float16; `z` and `images` stay float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with _quiet("onnxruntime.transformers.float16"):
        proto = convert_float_to_float16(proto, keep_io_types=True)
    # The converter appends the float32 -> float16 Cast of the input after the
    # nodes that read it; ONNX requires nodes in topological order.
    _sort_nodes(proto.graph)
    return proto


def _sort_nodes(graph):
    """Reorder graph.node topologically (Kahn's algorithm, keeping the given order where free)."""
    ready = {""} | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    pending, ordered = list(graph.node), []
    while pending:
        placed = [n for n in pending if all(name in ready for name in n.input)]
        if not placed:
            raise RuntimeError(f"the ONNX graph has a cycle or a missing input near node {pending[0].name!r}.")
        for node in placed:
            ready.update(node.output)
        ordered.extend(placed)
        placed_ids = {id(n) for n in placed}
        pending = [n for n in pending if id(n) not in placed_ids]
    nodes = [type(n)() for n in ordered]
    for copy, node in zip(nodes, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _onnx_versions():
    import onnx
    import onnxruntime
    import tf2onnx

    return {"onnx_versions": {"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}}


def _runtime_error(path, half):
    """max-abs difference between onnxruntime (CPU) on `path` and Keras on the parity latents."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    errors = []
    for z in parity_latents(half.latent_dim):
        feed, labels = {_metadata.INPUT_NAME: z}, half.parity_labels(len(z))
        if labels is not None:
            feed[_metadata.LABELS_NAME] = labels
        (got,) = session.run([_metadata.OUTPUT_NAME], feed)
        errors.append(max_abs_error(got, half.reference(z, labels)))
    return max(errors)
