"""export.onnx_graph: each rewrite on small ONNX graphs with random weights, run in
onnxruntime before and after (outputs equal to 1e-5), plus the cases each must leave alone."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export import onnx_graph

TOLERANCE = 1e-5


def make_model(nodes, inputs, initializers, out_rank=4):
    """A checked opset-17 model; `inputs` maps name -> shape, the output is `y` (rank `out_rank`)."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * out_rank)],
        initializer=[numpy_helper.from_array(constant(v), k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def constant(value):
    """float32, or int64 for integer arrays (shapes)."""
    value = np.asarray(value)
    return value.astype(np.int64 if value.dtype.kind in "iu" else np.float32)


def run(model, feeds):
    # No onnxruntime rewrites, so the comparison is of the graphs as written.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(["y"], feeds)[0]


def ops(model):
    return [n.op_type for n in model.graph.node]


def assert_same_outputs(before, after, feeds):
    onnx.checker.check_model(after)
    want, got = run(before, feeds), run(after, feeds)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def rand(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def images(rng, *shape):
    return {"x": rand(rng, *shape)}


# -- fold_channel_affine ------------------------------------------------------------------


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_batch_norm_mul_add_fold_into_the_convolution(op, with_bias):
    rng = np.random.default_rng(0)
    weights = rand(rng, 6, 4, 3, 3, scale=0.3)  # Conv: [out 6, in 4]; ConvTranspose: [in 6, out 4]
    channels = 6 if op == "Conv" else 4
    inits = {"w": weights, "scale": rng.uniform(0.5, 2, (1, channels, 1, 1)), "shift": rand(rng, channels, 1, 1)}
    inputs = ["x", "w"]
    if with_bias:
        inits["b"] = rand(rng, channels)
        inputs.append("b")
    conv = helper.make_node(op, inputs, ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    model = make_model(
        [conv, helper.make_node("Mul", ["c", "scale"], ["m"]), helper.make_node("Add", ["shift", "m"], ["y"])],
        {"x": [2, 4 if op == "Conv" else 6, 5, 5]},
        inits,
    )
    folded, count = onnx_graph.fold_channel_affine(model)
    assert count == 2 and ops(folded) == [op]
    assert_same_outputs(model, folded, images(rng, 2, 4 if op == "Conv" else 6, 5, 5))
    assert ops(model) == [op, "Mul", "Add"]  # the argument is untouched


def test_mul_after_matmul_scales_its_columns():
    rng = np.random.default_rng(1)
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Mul", ["h", "s"], ["y"])],
        {"x": [3, 5]},
        {"w": rand(rng, 5, 7), "s": rand(rng, 7)},
        out_rank=2,
    )
    folded, count = onnx_graph.fold_channel_affine(model)
    assert count == 1 and ops(folded) == ["MatMul"]
    assert_same_outputs(model, folded, {"x": rand(rng, 3, 5)})


def test_fold_leaves_shared_outputs_and_non_channel_constants_alone():
    rng = np.random.default_rng(2)
    conv = helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1])
    # The convolution's output is also read by the Add: folding the Mul would change it.
    shared = make_model(
        [conv, helper.make_node("Mul", ["c", "s"], ["m"]), helper.make_node("Add", ["m", "c"], ["y"])],
        {"x": [1, 2, 3, 3]},
        {"w": rand(rng, 2, 2, 1, 1), "s": rand(rng, 1, 2, 1, 1)},
    )
    # A per-pixel constant is not a per-channel scale.
    per_pixel = make_model(
        [conv, helper.make_node("Mul", ["c", "s"], ["y"])],
        {"x": [1, 2, 3, 3]},
        {"w": rand(rng, 2, 2, 1, 1), "s": rand(rng, 1, 2, 3, 3)},
    )
    for model in (shared, per_pixel):
        unchanged, count = onnx_graph.fold_channel_affine(model)
        assert count == 0 and ops(unchanged) == ops(model)


# -- conv_transpose_to_subpixel --------------------------------------------------------------


@pytest.mark.parametrize(
    "kernel, stride, pads, output_padding, size",
    [
        (5, 2, [1, 1, 2, 2], [0, 0], (7, 7)),  # Keras "same", the DCGAN layers (tf2onnx's pads)
        (4, 2, [1, 1, 1, 1], [0, 0], (4, 6)),  # the PyTorch DCGAN layer, a non-square input
        (5, 2, [2, 2, 2, 2], [1, 1], (3, 5)),  # output_padding
        (6, 3, [1, 2, 2, 1], [0, 0], (4, 4)),  # stride 3, different pads per axis
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_strided_conv_transpose_becomes_phase_convolutions(kernel, stride, pads, output_padding, size, with_bias):
    rng = np.random.default_rng(3)
    cin, cout = 8, 16
    inits = {"w": rand(rng, cin, cout, kernel, kernel, scale=0.2)}
    inputs = ["x", "w"]
    if with_bias:
        inits["b"] = rand(rng, cout)
        inputs.append("b")
    node = helper.make_node(
        "ConvTranspose", inputs, ["y"], kernel_shape=[kernel, kernel], strides=[stride, stride],
        pads=pads, output_padding=output_padding,
    )
    model = make_model([node], {"x": ["n", cin, *size]}, inits)
    rewritten, count = onnx_graph.conv_transpose_to_subpixel(model)
    assert count == 1
    assert ops(rewritten) == ["Conv"] * stride**2 + ["Concat", "DepthToSpace"]
    feeds = images(rng, 3, cin, *size)
    assert run(rewritten, feeds).shape == (3, cout, stride * size[0], stride * size[1])
    assert_same_outputs(model, rewritten, feeds)
    # Exactly the ConvTranspose's arithmetic: the phase kernels hold kernel**2 taps in all.
    taps = sum(int(np.prod(t.dims[2:])) for t in rewritten.graph.initializer if t.name.endswith("_w"))
    assert taps == kernel * kernel


@pytest.mark.parametrize(
    "change",
    [
        {"cout": 4},  # a thin output stays a ConvTranspose (faster there)
        {"kernel": 3, "pads": [0, 0, 1, 1]},  # 1-tap phases
        {"group": 2},
        {"output_padding": [0, 0], "pads": [0, 0, 0, 0]},  # output is not stride * input
    ],
)
def test_subpixel_leaves_other_conv_transposes_alone(change):
    rng = np.random.default_rng(4)
    cfg = {"cout": 16, "kernel": 5, "pads": [1, 1, 2, 2], "group": 1, "output_padding": [0, 0], **change}
    weights = rand(rng, 8, cfg["cout"] // cfg["group"], cfg["kernel"], cfg["kernel"])
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"], kernel_shape=[cfg["kernel"]] * 2, strides=[2, 2], pads=cfg["pads"],
        group=cfg["group"], output_padding=cfg["output_padding"],
    )
    model = make_model([node], {"x": [1, 8, 4, 4]}, {"w": weights})
    unchanged, count = onnx_graph.conv_transpose_to_subpixel(model)
    assert count == 0 and ops(unchanged) == ["ConvTranspose"]


# -- sink_elementwise -----------------------------------------------------------------------


def test_elementwise_nodes_move_before_depth_to_space():
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("DepthToSpace", ["x"], ["d"], blocksize=2, mode="DCR"),
        helper.make_node("Add", ["d", "shift"], ["a"]),  # per channel of the output (3)
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Mul", ["half", "r"], ["y"]),  # a scalar, first operand
    ]
    model = make_model(nodes, {"x": [2, 12, 3, 4]}, {"shift": rand(rng, 1, 3, 1, 1), "half": np.float32(0.5)})
    moved, count = onnx_graph.sink_elementwise(model)
    assert count == 3 and ops(moved) == ["Add", "Relu", "Mul", "DepthToSpace"]
    assert_same_outputs(model, moved, images(rng, 2, 12, 3, 4))


def test_elementwise_nodes_move_before_a_concat_of_convolutions():
    rng = np.random.default_rng(6)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["c2"], kernel_shape=[1, 1]),
        helper.make_node("Concat", ["c1", "c2"], ["c"], axis=1),
        helper.make_node("Add", ["c", "shift"], ["a"]),  # 2 + 3 channels, cut per input
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    inits = {"w1": rand(rng, 2, 4, 1, 1), "w2": rand(rng, 3, 4, 1, 1), "shift": rand(rng, 1, 5, 1, 1)}
    model = make_model(nodes, {"x": [2, 4, 3, 3]}, inits)
    moved, count = onnx_graph.sink_elementwise(model)
    assert count == 2 and ops(moved)[-1] == "Concat" and ops(moved).count("Relu") == 2
    assert_same_outputs(model, moved, images(rng, 2, 4, 3, 3))


def test_sink_leaves_a_non_constant_operand_alone():
    nodes = [
        helper.make_node("DepthToSpace", ["x"], ["d"], blocksize=2),
        helper.make_node("Add", ["d", "other"], ["y"]),
    ]
    model = make_model(nodes, {"x": [1, 4, 2, 2], "other": [1, 1, 4, 4]}, {})
    unchanged, count = onnx_graph.sink_elementwise(model)
    assert count == 0 and ops(unchanged) == ops(model)


# -- thin_conv_to_conv_transpose ---------------------------------------------------------------


@pytest.mark.parametrize("cout, kernel, pads", [(1, 3, [1, 1, 1, 1]), (3, 3, [0, 1, 2, 1]), (3, 5, [2, 2, 2, 2])])
def test_a_thin_convolution_becomes_a_conv_transpose(cout, kernel, pads):
    rng = np.random.default_rng(8)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[kernel, kernel], pads=pads)
    model = make_model([node], {"x": ["n", 6, 7, 9]}, {"w": rand(rng, cout, 6, kernel, kernel, scale=0.1), "b": rand(rng, cout)})
    rewritten, count = onnx_graph.thin_conv_to_conv_transpose(model)
    assert count == 1 and ops(rewritten) == ["ConvTranspose"]
    assert_same_outputs(model, rewritten, images(rng, 2, 6, 7, 9))


@pytest.mark.parametrize("cout, strides", [(8, [1, 1]), (1, [2, 2])])
def test_wide_or_strided_convolutions_stay(cout, strides):
    rng = np.random.default_rng(9)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=strides)
    model = make_model([node], {"x": [1, 6, 8, 8]}, {"w": rand(rng, cout, 6, 3, 3)})
    unchanged, count = onnx_graph.thin_conv_to_conv_transpose(model)
    assert count == 0 and ops(unchanged) == ["Conv"]


# -- permute_reshape_transpose -----------------------------------------------------------------


def dense_to_nchw(rng, reshape_readers=1):
    height, width, channels = 3, 2, 4
    columns = height * width * channels
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "bias"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["nhwc"]),
        helper.make_node("Transpose", ["nhwc"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "k"], ["y" if reshape_readers == 1 else "c"], kernel_shape=[1, 1]),
    ]
    if reshape_readers == 2:
        nodes += [helper.make_node("ReduceSum", ["nhwc"], ["s"], keepdims=1), helper.make_node("Add", ["c", "s"], ["y"])]
    inits = {"w": rand(rng, 5, columns), "bias": rand(rng, columns), "shape": [-1, height, width, channels], "k": rand(rng, 2, channels, 1, 1)}
    return make_model(nodes, {"x": ["n", 5]}, inits)


def test_dense_columns_are_permuted_so_the_layout_transpose_goes():
    rng = np.random.default_rng(10)
    model = dense_to_nchw(rng)
    rewritten, count = onnx_graph.permute_reshape_transpose(model)
    assert count == 1 and "Transpose" not in ops(rewritten)
    assert_same_outputs(model, rewritten, {"x": rand(rng, 3, 5)})


def test_the_transpose_stays_when_the_nhwc_tensor_has_another_reader():
    model = dense_to_nchw(np.random.default_rng(11), reshape_readers=2)
    unchanged, count = onnx_graph.permute_reshape_transpose(model)
    assert count == 0 and "Transpose" in ops(unchanged)


# -- all of them on a real export --------------------------------------------------------------


def test_to_onnx_writes_the_rewritten_graph_with_parity(tmp_path):
    import keras

    import zoo
    from export import read_metadata, to_onnx

    gan = zoo.DCGAN((16, 16, 3), 8, generator_filters=(32, 16), discriminator_filters=(8, 16), seed=0)
    # Batch-norm statistics and biases away from their initial 0/1, as after training.
    rng = np.random.default_rng(12)
    for variable in gan.generator.weights:
        if "moving_variance" in variable.path or "gamma" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
        elif any(part in variable.path for part in ("moving_mean", "beta", "bias")):
            variable.assign(rng.normal(0, 0.2, variable.shape).astype("float32"))
    for precision, tolerance in (("fp32", 1e-5), ("fp16", 1e-2)):
        path = tmp_path / f"gan-{precision}.onnx"
        result = to_onnx(gan, path, precision=precision, allow_untrained=True)
        assert result.max_abs_error <= tolerance
        graph = onnx.load(path).graph
        kinds = [n.op_type for n in graph.node]
        # The 32 -> 16 layer is sub-pixel convolutions; the 16 -> 3 image layer stays a ConvTranspose.
        assert kinds.count("DepthToSpace") == 1 and kinds.count("ConvTranspose") == 1
        assert "Transpose" not in kinds[: kinds.index("Conv")]  # no layout Transpose before the first convolution
        assert read_metadata(path)["graph_rewrites"]["conv_transpose_to_subpixel"] == 1
        z = np.random.default_rng(13).standard_normal((5, 8)).astype(np.float32)
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["images"], {"z": z})[0]
        np.testing.assert_allclose(got, keras.ops.convert_to_numpy(gan.generate(z)), atol=tolerance, rtol=0)


def test_vae_export_keeps_its_3x3_transposed_convolutions_and_rewrites_the_image_layer(tmp_path):
    import keras

    import zoo
    from export import read_metadata, to_onnx

    vae = zoo.VAE((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, seed=0)
    path = tmp_path / "vae.onnx"
    result = to_onnx(vae, path, allow_untrained=True)
    assert result.max_abs_error <= 1e-5
    kinds = [n.op_type for n in onnx.load(path).graph.node]
    # Two 3x3 stride-2 layers (1-tap phases: not rewritten) + the 1-channel image Conv as a ConvTranspose.
    assert kinds.count("ConvTranspose") == 3 and "Conv" not in kinds and "Transpose" not in kinds
    assert read_metadata(path)["graph_rewrites"]["thin_conv_to_conv_transpose"] == 1
    z = np.random.default_rng(14).standard_normal((3, 4)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["images"], {"z": z})[0]
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(vae.generate(z)), atol=1e-5, rtol=0)
