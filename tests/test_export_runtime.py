"""export.runtime.OnnxGenerator and `zoo generate`: a real exported file, run in
onnxruntime, in this process and in fresh subprocesses that must not load TensorFlow."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

import zoo
from export import to_onnx
from zoo_cli.main import main as zoo_main
from zoo_common.grid import make_grid
from export.runtime import OnnxGenerator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def gan():
    """A tiny RGB DCGAN, trained a few steps so its batch-norm statistics are not the initial ones."""
    model = zoo.DCGAN((16, 16, 3), 8, generator_filters=(8, 4), discriminator_filters=(4, 8), kernel_size=3, seed=0)
    model.compile()
    images = np.random.default_rng(0).uniform(size=(32, 16, 16, 3)).astype("float32")
    model.fit(images, epochs=1, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def onnx_files(gan, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return {
        "fp32": to_onnx(gan, out / "dcgan.onnx", dataset="noise").path,
        "fp16": to_onnx(gan, out / "dcgan-fp16.onnx", precision="fp16", dataset="noise").path,
    }


@pytest.fixture(scope="module")
def generator(onnx_files):
    return OnnxGenerator(onnx_files["fp32"])


def keras_images(model, z):
    return keras.ops.convert_to_numpy(model.generate(z))


def run_python(code, *args, timeout=180):
    return subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)] if code else [sys.executable, *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )


def zoo_command():
    """The installed `zoo` console script, or its entry point run as a module."""
    script = os.path.join(os.path.dirname(sys.executable), "zoo")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "zoo_cli"]


# -- TensorFlow-free ----------------------------------------------------------


def test_the_runtime_loads_no_tensorflow_or_keras(onnx_files):
    done = run_python(
        f"""
        import json, sys
        import numpy as np
        import export, export.runtime
        from export.runtime import OnnxGenerator
        g = export.OnnxGenerator({onnx_files['fp32']!r})
        a, b, c = g.sample(5, seed=3), g.sample(5, seed=3), g.sample(5, seed=4)
        print(json.dumps({{
            "heavy": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf2onnx")),
            "onnxruntime": "onnxruntime" in sys.modules,
            "same_seed_equal": bool(np.array_equal(a, b)),
            "other_seed_differs": not np.array_equal(a, c),
            "shape": list(a.shape),
        }}))
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "heavy": [],
        "onnxruntime": True,
        "same_seed_equal": True,
        "other_seed_differs": True,
        "shape": [5, 16, 16, 3],
    }


def test_python_m_zoo_cli_generate_runs_without_tensorflow(onnx_files, tmp_path):
    out = tmp_path / "grid.png"
    done = run_python(None, "-X", "importtime", "-m", "zoo_cli", "generate", onnx_files["fp16"], "-n", "6", "-o", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "onnxruntime" in imported and "PIL.Image" in imported  # the import log is real
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras")]
    assert Image.open(out).size == (3 * 34 + 2, 2 * 34 + 2)


def test_zoo_generate_loads_no_tensorflow(onnx_files, tmp_path):
    done = subprocess.run(
        [*zoo_command(), "generate", onnx_files["fp32"], "-n", "4", "-o", str(tmp_path / "g.png")],
        capture_output=True, text=True, timeout=180, cwd=REPO, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "onnxruntime" in imported
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras")]


def test_zoo_generate_writes_the_png_grid_of_the_runtime_samples(onnx_files, tmp_path):
    out = tmp_path / "grid.png"
    done = subprocess.run(
        [*zoo_command(), "generate", onnx_files["fp32"], "-n", "10", "--seed", "0", "-o", str(out)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {out}" in done.stdout
    with Image.open(out) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        pixels = np.asarray(png)
    # 10 images of 16x16 -> cells of 32 px (enlarged x2), 4 columns x 3 rows, 2 px padding.
    assert pixels.shape == (3 * 34 + 2, 4 * 34 + 2, 3)
    expected = make_grid(OnnxGenerator(onnx_files["fp32"]).sample(10, seed=0))
    np.testing.assert_array_equal(pixels, expected)


def test_generate_refuses_an_existing_png_and_a_bad_count(onnx_files, tmp_path, capsys):
    out = tmp_path / "grid.png"
    out.write_bytes(b"precious")
    assert zoo_main(["generate", onnx_files["fp32"], "-n", "4", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and "--overwrite" in err and "\n" not in err
    assert out.read_bytes() == b"precious"
    # --overwrite replaces only a file genzoo wrote: not this one (tests/test_guarantees.py has both sides).
    assert zoo_main(["generate", onnx_files["fp32"], "-n", "4", "-o", str(out), "--overwrite"]) == 2
    assert "was not written by genzoo" in capsys.readouterr().err and out.read_bytes() == b"precious"
    out.unlink()
    assert zoo_main(["generate", onnx_files["fp32"], "-n", "4", "-o", str(out)]) == 0
    assert zoo_main(["generate", onnx_files["fp32"], "-n", "4", "-o", str(out), "--overwrite"]) == 0
    assert Image.open(out).size == (2 * 34 + 2, 2 * 34 + 2)
    assert zoo_main(["generate", onnx_files["fp32"], "-n", "0", "-o", str(tmp_path / "x.png")]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert zoo_main(["generate", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "y.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


# -- OnnxGenerator -------------------------------------------------------------


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-5), ("fp16", 1e-2)])
@pytest.mark.parametrize("batch", [1, 7])
def test_generate_matches_keras(gan, onnx_files, precision, tolerance, batch):
    g = OnnxGenerator(onnx_files[precision], threads=1)
    z = np.random.default_rng(5).standard_normal((batch, 8)).astype("float32")
    images = g.generate(z)
    assert images.shape == (batch, 16, 16, 3) and images.dtype == np.float32
    assert np.max(np.abs(images - keras_images(gan, z))) <= tolerance
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_sample_is_reproducible_for_a_seed(generator):
    a = generator.sample(6, seed=11)
    np.testing.assert_array_equal(a, generator.sample(6, seed=11))
    assert not np.array_equal(a, generator.sample(6, seed=12))
    z = np.random.default_rng(11).standard_normal((6, 8), dtype=np.float32)
    np.testing.assert_array_equal(generator.sample_latents(6, seed=11), z)
    np.testing.assert_array_equal(a, generator.generate(z))
    unseeded = generator.sample(6), generator.sample(6)
    assert not np.array_equal(*unseeded)


def test_generate_in_chunks_equals_one_batch(generator):
    z = generator.sample_latents(10, seed=0)
    np.testing.assert_array_equal(generator.generate(z, batch_size=3), generator.generate(z))


def test_interpolate_walks_from_z0_to_z1(generator):
    z0, z1 = generator.sample_latents(2, seed=1)
    ends = generator.generate(np.stack([z0, z1]))
    for method in ("linear", "slerp"):
        frames = generator.interpolate(z0, z1, steps=5, method=method)
        assert frames.shape == (5, 16, 16, 3)
        np.testing.assert_allclose(frames[[0, -1]], ends, rtol=0, atol=1e-6)
        assert not np.allclose(frames[2], frames[0], atol=1e-3)
    # The linear midpoint is the image of the mean latent; slerp's is not (it keeps the norm up).
    middle = generator.generate(((z0 + z1) / 2)[None])[0]
    np.testing.assert_allclose(generator.interpolate(z0[None], z1[None], 3)[1], middle, rtol=0, atol=1e-6)
    assert not np.allclose(generator.interpolate(z0, z1, 3, method="slerp")[1], middle, atol=1e-4)
    with pytest.raises(ValueError, match="steps=1"):
        generator.interpolate(z0, z1, 1)
    with pytest.raises(ValueError, match="method='cubic'"):
        generator.interpolate(z0, z1, 3, method="cubic")
    with pytest.raises(ValueError, match="one latent"):
        generator.interpolate(np.stack([z0, z1]), z1, 3)


def test_to_uint8_rounds_and_clips(generator):
    out = generator.to_uint8(np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], dtype=np.float32))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 0, 128, 255, 255]]


def test_metadata_is_exposed_as_attributes(generator, onnx_files):
    assert generator.model == "dcgan"
    assert generator.latent_dim == 8
    assert generator.image_shape == (16, 16, 3)
    assert generator.value_range == (0.0, 1.0)
    assert generator.dataset == "noise"
    assert generator.precision == "fp32" and OnnxGenerator(onnx_files["fp16"]).precision == "fp16"
    assert generator.genzoo_version == zoo.__version__
    assert generator.metadata["parity_max_abs_error"] <= 1e-5
    assert generator.providers == ["CPUExecutionProvider"]
    assert "dcgan" in repr(generator)


# -- bad input -----------------------------------------------------------------


def test_a_latent_of_the_wrong_width_is_refused(generator):
    for shape in ((3, 7), (3, 9), (8,), (2, 3, 8)):
        with pytest.raises(ValueError, match=r"\(batch, 8\)"):
            generator.generate(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"z\[None\]"):
        generator.generate(np.zeros(8, np.float32))


def test_a_latent_of_the_wrong_dtype_is_refused(generator):
    for z in (np.zeros((2, 8), np.int64), np.zeros((2, 8), bool), np.zeros((2, 8), np.complex64), [["a"] * 8]):
        with pytest.raises(TypeError, match="float array"):
            generator.generate(z)
    # Any float precision is fine: float64 (numpy's default) is cast to float32.
    z = np.random.default_rng(0).standard_normal((2, 8))
    np.testing.assert_array_equal(generator.generate(z), generator.generate(z.astype(np.float32)))


def test_bad_sample_arguments(generator):
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n="):
            generator.sample(n)
    with pytest.raises(ValueError, match="batch_size=0"):
        generator.generate(generator.sample_latents(2, 0), batch_size=0)


def test_files_that_are_not_genzoo_generators_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxGenerator(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="is a directory"):
        OnnxGenerator(tmp_path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="not an ONNX model"):
        OnnxGenerator(garbage)
    # A valid ONNX model without genzoo metadata.
    node = onnx.helper.make_node("Identity", ["z"], ["images"])
    graph = onnx.helper.make_graph(
        [node],
        "identity",
        [onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["batch", 8])],
        [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["batch", 8])],
    )
    plain = tmp_path / "plain.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]), plain)
    with pytest.raises(ValueError, match="no genzoo metadata"):
        OnnxGenerator(plain)


def test_providers(onnx_files):
    available = ort.get_available_providers()
    assert OnnxGenerator(onnx_files["fp32"], providers="cpu").providers == ["CPUExecutionProvider"]
    auto = OnnxGenerator(onnx_files["fp32"], providers="auto").providers
    assert auto[0] == ("CUDAExecutionProvider" if "CUDAExecutionProvider" in available else "CPUExecutionProvider")
    if "CUDAExecutionProvider" in available:
        assert OnnxGenerator(onnx_files["fp32"], providers="cuda").providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            OnnxGenerator(onnx_files["fp32"], providers="cuda")
    with pytest.raises(ValueError, match="'tpu' is not known"):
        OnnxGenerator(onnx_files["fp32"], providers="tpu")
    with pytest.raises(ValueError, match="NoSuchExecutionProvider"):
        OnnxGenerator(onnx_files["fp32"], providers=["NoSuchExecutionProvider"])
    for threads in (0, -2, 1.5):
        with pytest.raises(ValueError, match="threads"):
            OnnxGenerator(onnx_files["fp32"], threads=threads)
