"""export.to_saved_model / export.to_onnx / `zoo export`: real files, reloaded with
tf.saved_model.load and run in onnxruntime, compared with the Keras model."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf

import zoo
from export import ParityError, read_metadata, to_onnx, to_saved_model
from export import metadata as export_metadata
from export.onnx_export import MIN_OPSET, max_opset

TOLERANCE = {"fp32": 1e-5, "fp16": 1e-2}
BATCH = 16  # 64 digits / 16 = 4 optimizer steps per epoch

# Tiny models of every exported kind: grey 8x8 (digits) and one RGB 16x16.
KINDS = {
    "ae": lambda: zoo.Autoencoder((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, seed=0),
    "dae": lambda: zoo.Autoencoder((8, 8, 1), 6, noise_stddev=0.3, filters=(4, 8), hidden_dim=16, seed=0),
    "vae": lambda: zoo.VAE((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, seed=0),
    "dcgan": lambda: zoo.DCGAN(
        (16, 16, 3), 8, generator_filters=(8, 4), discriminator_filters=(4, 8), kernel_size=3, seed=0
    ),
}


def train_a_few_steps(model, images):
    model.compile_default()
    model.fit(images, epochs=1, batch_size=BATCH, verbose=0, shuffle=False)
    return model


def tiny_images(model, digits):
    if model.image_shape == (8, 8, 1):
        return digits[0][:64]
    return np.random.default_rng(0).uniform(size=(64, *model.image_shape)).astype("float32")


def keras_images(model, z):
    return keras.ops.convert_to_numpy(model.generate(z))


def latents(model, n, seed=7):
    return np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype("float32")


@pytest.fixture(scope="module", params=sorted(KINDS))
def exported(request, digits, tmp_path_factory):
    """One trained model per kind, exported once: SavedModel, ONNX fp32 and fp16."""
    kind = request.param
    model = KINDS[kind]()
    train_a_few_steps(model, tiny_images(model, digits))
    out = tmp_path_factory.mktemp(kind)
    dataset = "digits" if model.image_shape == (8, 8, 1) else None
    return {
        "kind": kind,
        "model": model,
        "dataset": dataset,
        "saved_model": to_saved_model(model, out / "saved_model", dataset=dataset),
        "fp32": to_onnx(model, out / f"{kind}.onnx", dataset=dataset),
        "fp16": to_onnx(model, out / f"{kind}-fp16.onnx", precision="fp16", dataset=dataset),
    }


# -- SavedModel ----------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7])
def test_saved_model_reloads_to_the_keras_output(exported, batch):
    model = exported["model"]
    loaded = tf.saved_model.load(exported["saved_model"].path)
    z = latents(model, batch)
    got = loaded.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    want = keras_images(model, z)
    assert got.shape == (batch, *model.image_shape)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert got.min() >= 0.0 and got.max() <= 1.0
    assert exported["saved_model"].max_abs_error <= 1e-5


def test_saved_model_signatures_are_named_z_and_images(exported):
    model = exported["model"]
    loaded = tf.saved_model.load(exported["saved_model"].path)
    expected = {"serving_default"} if exported["kind"] == "dcgan" else {"serving_default", "encode"}
    assert set(loaded.signatures) == expected
    serve = loaded.signatures["serving_default"]
    args, kwargs = serve.structured_input_signature
    assert args == () and set(kwargs) == {"z"}
    assert kwargs["z"].dtype == tf.float32 and kwargs["z"].shape.as_list() == [None, model.latent_dim]
    assert set(serve.structured_outputs) == {"images"}
    assert serve.structured_outputs["images"].shape.as_list() == [None, *model.image_shape]


@pytest.mark.parametrize("exported", ["ae", "dae", "vae"], indirect=True)  # a DCGAN has no encoder
def test_saved_model_encode_signature_matches_keras(exported):
    model = exported["model"]
    loaded = tf.saved_model.load(exported["saved_model"].path)
    images = np.random.default_rng(3).uniform(size=(5, *model.image_shape)).astype("float32")
    got = loaded.signatures["encode"](images=tf.constant(images))
    if exported["kind"] == "vae":
        mean, log_var = (keras.ops.convert_to_numpy(t) for t in model.encode(images))
        assert set(got) == {"mean", "log_var"}
        np.testing.assert_allclose(got["mean"].numpy(), mean, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got["log_var"].numpy(), log_var, rtol=0, atol=1e-5)
    else:
        assert set(got) == {"code"}
        np.testing.assert_allclose(got["code"].numpy(), keras.ops.convert_to_numpy(model.encode(images)), atol=1e-5)


def test_saved_model_holds_each_exported_weight_once(exported):
    """Only the networks the signatures use, each weight stored once (no discriminator, no optimizer)."""
    model = exported["model"]
    networks = [model.generator] if exported["kind"] == "dcgan" else [model.decoder, model.encoder]
    want = sorted(tuple(w.shape) for network in networks for w in network.weights)
    checkpoint = os.path.join(exported["saved_model"].path, "variables", "variables")
    skip = ("_CHECKPOINTABLE_OBJECT_GRAPH", export_metadata.SAVED_MODEL_VARIABLE)
    stored = sorted(tuple(shape) for name, shape in tf.train.list_variables(checkpoint) if not name.startswith(skip))
    assert stored == want


@pytest.mark.parametrize("exported", ["vae"], indirect=True)
def test_saved_model_cli_shows_the_named_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip(f"saved_model_cli not installed beside {sys.executable}")
    shown = subprocess.run(
        [cli, "show", "--all", "--dir", exported["saved_model"].path], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    for text in ("signature_def['serving_default']", "inputs['z']", "outputs['images']", "signature_def['encode']"):
        assert text in shown.stdout


# -- ONNX ----------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_output_matches_keras_for_any_batch(exported, precision, batch):
    model = exported["model"]
    session = ort.InferenceSession(exported[precision].path, providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, out.name, out.type) == ("z", "tensor(float)", "images", "tensor(float)")
    assert isinstance(inp.shape[0], str) and inp.shape[1] == model.latent_dim  # a symbolic, dynamic batch
    z = latents(model, batch)
    (got,) = session.run(["images"], {"z": z})
    assert got.shape == (batch, *model.image_shape) and got.dtype == np.float32
    assert np.max(np.abs(got - keras_images(model, z))) <= TOLERANCE[precision]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnx_checker_passes_and_the_error_is_returned_and_recorded(exported, precision):
    result = exported[precision]
    onnx.checker.check_model(result.path, full_check=True)
    assert result.format == "onnx" and result.precision == precision
    assert 0.0 <= result.max_abs_error <= TOLERANCE[precision] == result.tolerance
    assert result.size_bytes == os.path.getsize(result.path)
    props = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert float(props["parity_max_abs_error"]) == result.max_abs_error
    assert props["precision"] == precision and props["model"] == exported["kind"]
    # fp16 is a real fp16 model: weights of 2 bytes, only the interface in float32.
    graph = onnx.load(result.path).graph
    weight_types = {onnx.TensorProto.DataType.Name(t.data_type) for t in graph.initializer if len(t.dims) > 1}
    assert weight_types == ({"FLOAT16"} if precision == "fp16" else {"FLOAT"})
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_fp16_file_is_smaller_than_fp32(exported):
    assert exported["fp16"].size_bytes < exported["fp32"].size_bytes


def test_metadata_reads_back_from_both_artifacts(exported):
    model, kind = exported["model"], exported["kind"]
    from_saved_model = read_metadata(exported["saved_model"].path)
    from_onnx = read_metadata(exported["fp32"].path)
    for meta in (from_saved_model, from_onnx):
        assert meta["model"] == kind
        assert meta["model_class"] == type(model).__name__
        assert meta["latent_dim"] == model.latent_dim
        assert meta["image_shape"] == list(model.image_shape)
        assert meta["value_range"] == [0.0, 1.0]
        assert meta["genzoo_version"] == zoo.__version__
        assert meta["dataset"] == exported["dataset"]
        assert meta["training_steps"] == 64 // BATCH
        assert meta["latent_prior"] == ("none" if kind in ("ae", "dae") else "standard_normal")
    assert from_onnx["opset"] == exported["fp32"].opset and from_onnx["precision"] == "fp32"
    assert from_onnx["parity_max_abs_error"] == exported["fp32"].max_abs_error
    # The same object inside the SavedModel graph, for TensorFlow-only consumers.
    loaded = tf.saved_model.load(exported["saved_model"].path)
    (variable,) = getattr(loaded, export_metadata.SAVED_MODEL_VARIABLE)
    assert json.loads(variable.numpy().decode()) == from_saved_model


@pytest.mark.parametrize("exported", ["dcgan"], indirect=True)
def test_opset_range_is_honoured(exported):
    model, out = exported["model"], os.path.dirname(exported["fp32"].path)
    for opset in (MIN_OPSET, max_opset()):
        result = to_onnx(model, os.path.join(out, f"opset{opset}.onnx"), opset=opset)
        versions = {o.domain: o.version for o in onnx.load(result.path).opset_import}
        assert versions[""] == opset == result.opset
        assert result.max_abs_error <= 1e-5


# -- bad input -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_vae(digits):
    return train_a_few_steps(KINDS["vae"](), digits[0][:64])


@pytest.mark.parametrize("export_fn", [to_saved_model, to_onnx], ids=["saved_model", "onnx"])
def test_a_never_trained_model_is_refused_unless_allowed(export_fn, tmp_path):
    never_compiled = KINDS["vae"]()
    compiled_not_fit = KINDS["dcgan"]()
    compiled_not_fit.compile()
    for model, why in ((never_compiled, "never compiled"), (compiled_not_fit, "no optimizer step")):
        with pytest.raises(ValueError, match=why) as err:
            export_fn(model, tmp_path / "artifact")
        assert "allow_untrained=True" in str(err.value)
    assert os.listdir(tmp_path) == []
    result = export_fn(never_compiled, tmp_path / "artifact", allow_untrained=True)
    assert read_metadata(result.path)["training_steps"] is None


@pytest.mark.parametrize("export_fn", [to_saved_model, to_onnx], ids=["saved_model", "onnx"])
def test_anything_but_a_genzoo_model_is_refused(export_fn, tmp_path):
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64)])
    for thing in (plain, "model.keras", None):
        with pytest.raises(TypeError, match="genzoo model"):
            export_fn(thing, tmp_path / "artifact", allow_untrained=True)


def test_bad_precision_and_opset_are_refused(trained_vae, tmp_path):
    with pytest.raises(ValueError, match="precision='int8'.*'fp32' and 'fp16'"):
        to_onnx(trained_vae, tmp_path / "m.onnx", precision="int8")
    for opset in (MIN_OPSET - 1, max_opset() + 1, "15", 15.0):
        with pytest.raises(ValueError, match="opset"):
            to_onnx(trained_vae, tmp_path / "m.onnx", opset=opset)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("export_fn", [to_saved_model, to_onnx], ids=["saved_model", "onnx"])
def test_an_existing_path_is_refused_unless_overwrite_and_ours(export_fn, trained_vae, tmp_path):
    target = tmp_path / "artifact"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_fn(trained_vae, target)
    # overwrite replaces genzoo's own artifacts only, recognised by their metadata, not by a name.
    with pytest.raises(FileExistsError, match="was not written by genzoo"):
        export_fn(trained_vae, target, overwrite=True)
    assert target.read_text() == "precious"
    target.unlink()
    result = export_fn(trained_vae, target)
    assert read_metadata(result.path)["model"] == "vae"
    with pytest.raises(FileExistsError, match="overwrite"):
        export_fn(trained_vae, target)
    # Replacing an artifact of ours with a fresh one, directory or file, works.
    again = export_fn(trained_vae, target, overwrite=True)
    assert read_metadata(again.path)["model"] == "vae"
    assert sorted(os.listdir(tmp_path)) == ["artifact"]  # no temporary left behind


def test_a_failed_parity_check_leaves_nothing_and_keeps_the_old_file(trained_vae, tmp_path):
    target = tmp_path / "vae.onnx"
    with pytest.raises(ParityError, match="tolerance") as err:
        to_onnx(trained_vae, target, precision="fp16", tolerance=1e-9)
    assert isinstance(err.value, ValueError)
    assert os.listdir(tmp_path) == []
    good = to_onnx(trained_vae, target)
    before = target.read_bytes()
    with pytest.raises(ParityError):
        to_onnx(trained_vae, target, precision="fp16", tolerance=1e-9, overwrite=True)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["vae.onnx"]
    assert read_metadata(good.path)["precision"] == "fp32"


# -- zoo export ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real `zoo train` run directory (1 epoch of the digits)."""
    from zoo import training

    out = tmp_path_factory.mktemp("run") / "run"
    training.train("vae", epochs=1, out=str(out), latent_dim=4, batch_size=256, verbose=0)
    return out


@pytest.fixture
def run_dir(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def zoo_main(*argv):
    from zoo_cli.main import main

    return main([str(a) for a in argv])


def test_zoo_export_writes_both_formats_with_a_report(run_dir, capsys):
    assert zoo_main("export", run_dir) == 0
    printed = capsys.readouterr().out
    out = run_dir / "export"
    assert sorted(os.listdir(out)) == ["export.json", "saved_model", "vae.onnx"]
    assert f"wrote {out / 'saved_model'}" in printed and f"wrote {out / 'vae.onnx'}" in printed
    report = json.loads((out / "export.json").read_text())["artifacts"]
    assert set(report) == {"saved_model", "vae.onnx"}
    assert report["vae.onnx"]["max_abs_error"] <= 1e-5 and report["saved_model"]["max_abs_error"] <= 1e-5
    assert report["vae.onnx"]["size_bytes"] == os.path.getsize(out / "vae.onnx")
    for artifact in (out / "saved_model", out / "vae.onnx"):
        meta = read_metadata(artifact)
        assert (meta["dataset"], meta["model"], meta["latent_dim"]) == ("digits", "vae", 4)
    # The artifact computes what the run's model computes.
    model = keras.saving.load_model(run_dir / "model.keras")
    z = latents(model, 3)
    (got,) = ort.InferenceSession(str(out / "vae.onnx")).run(None, {"z": z})
    np.testing.assert_allclose(got, keras_images(model, z), rtol=0, atol=1e-5)


def test_zoo_export_refuses_existing_artifacts_unless_overwrite(run_dir, capsys):
    assert zoo_main("export", run_dir, "--format", "onnx") == 0
    onnx_path = run_dir / "export" / "vae.onnx"
    stamp = os.stat(onnx_path).st_mtime_ns
    capsys.readouterr()
    assert zoo_main("export", run_dir) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo export: error:") and "vae.onnx already exists" in err and "--overwrite" in err
    assert "\n" not in err
    # Nothing was written: not even the SavedModel, whose path was free.
    assert sorted(os.listdir(run_dir / "export")) == ["export.json", "vae.onnx"]
    assert os.stat(onnx_path).st_mtime_ns == stamp
    assert zoo_main("export", run_dir, "--overwrite") == 0
    assert os.stat(onnx_path).st_mtime_ns != stamp


def test_zoo_export_fp16(run_dir):
    assert zoo_main("export", run_dir, "--format", "onnx", "--fp16") == 0
    meta = read_metadata(run_dir / "export" / "vae-fp16.onnx")
    assert meta["precision"] == "fp16" and meta["parity_max_abs_error"] <= 1e-2
    assert not (run_dir / "export" / "vae.onnx").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "tflite"], "format 'tflite' is not supported"),
        (["--format", ""], "format '' is not supported"),
        (["--opset", "3"], "opset=3 is not supported"),
    ],
)
def test_zoo_export_bad_options_give_one_line_errors(run_dir, capsys, args, message):
    assert zoo_main("export", run_dir, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo export: error:") and message in err and "\n" not in err
    assert not (run_dir / "export").exists() or os.listdir(run_dir / "export") == []


def test_zoo_export_of_a_missing_run(tmp_path, capsys):
    assert zoo_main("export", tmp_path / "nope") == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert zoo_main("export", tmp_path / "empty") == 2
    assert "no model.keras" in capsys.readouterr().err


def test_overwrite_replaces_a_savedmodel_of_ours_but_never_a_foreign_folder(run_dir, capsys):
    assert zoo_main("export", run_dir, "--format", "savedmodel") == 0
    assert zoo_main("export", run_dir, "--format", "savedmodel", "--overwrite") == 0  # ours: replaced
    target = run_dir / "export" / "saved_model"
    shutil.rmtree(target)
    target.mkdir()
    (target / "mine.txt").write_text("not genzoo's")
    capsys.readouterr()
    assert zoo_main("export", run_dir, "--format", "savedmodel", "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo export: error:") and "was not written by genzoo" in err and "\n" not in err
    assert sorted(os.listdir(target)) == ["mine.txt"]
