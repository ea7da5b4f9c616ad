"""export.int8 and `zoo export --int8`: an int8 generator is written only where its samples keep their
domain FID (within 5% of fp32's) and it is faster; real quantised files run in onnxruntime, real runs
exported through the CLI in a subprocess."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import onnx
import pytest

import zoo
from export import int8, read_metadata, to_onnx
from export.runtime import OnnxGenerator


def verdict(fid_fp32=10.0, fid_int8=10.2, fp32=1000.0, int8_speed=1500.0):
    return int8.Verdict(fid_fp32=fid_fp32, fid_int8=fid_int8, images_per_s_fp32=fp32,
                        images_per_s_int8=int8_speed, samples=10_000, speed_batch=1024)


@pytest.mark.parametrize(
    "figures, offered, failed",
    [
        ({}, True, None),
        ({"fid_int8": 10.49}, True, None),                        # +4.9%: within the bar
        ({"fid_int8": 9.6}, True, None),                          # better by 4%: within it too
        ({"fid_int8": 10.51}, False, "its samples are worse"),    # +5.1%
        ({"fid_int8": float("inf")}, False, "its samples are worse"),
        ({"int8_speed": 1000.0}, False, "it is not faster here"),  # as fast is not faster
        ({"fid_int8": 12.0, "int8_speed": 900.0}, False, "its samples are worse"),
    ],
)
def test_the_rule_needs_both_quality_and_speed(figures, offered, failed):
    v = verdict(**figures)
    assert v.offered is offered
    text = v.describe()
    if failed:
        assert failed in text
    # The figures that decided are in the line and in the record.
    record = v.to_dict()
    assert record["offered"] is offered and record["samples"] == 10_000 and record["fid_bar"] == 0.05
    assert f"{v.speedup:.2f}x" in text or not v.keeps_quality


def test_both_rules_are_named_when_both_fail():
    text = verdict(fid_int8=20.0, int8_speed=500.0).describe()
    assert "its samples are worse" in text and "it is not faster here" in text and "+100.0%" in text


@pytest.fixture(scope="module")
def trained_generators(digits):
    """A DCGAN (RGB 16x16) and a conditional VAE, each trained a few steps, exported to fp32 ONNX."""
    keras.utils.set_random_seed(0)
    gan = zoo.DCGAN((16, 16, 3), 8, generator_filters=(8, 4), discriminator_filters=(4, 8), kernel_size=3, seed=0)
    gan.compile_default()
    rgb = np.repeat(keras.ops.convert_to_numpy(keras.ops.image.resize(digits[0][:128], (16, 16))), 3, axis=-1)
    gan.fit(np.clip(rgb, 0, 1), epochs=1, batch_size=32, verbose=0)
    cvae = zoo.VAE((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, num_classes=10, seed=0)
    cvae.compile(optimizer=keras.optimizers.Adam(1e-3))
    cvae.fit(digits[0][:256], digits[1][:256], epochs=1, batch_size=32, verbose=0)
    return {"dcgan": gan, "cvae": cvae}


@pytest.mark.parametrize("name", ["dcgan", "cvae"])
def test_quantize_writes_an_int8_generator_that_makes_the_fp32_images(trained_generators, name, tmp_path):
    fp32 = to_onnx(trained_generators[name], tmp_path / "g.onnx").path
    path = int8.quantize(fp32, str(tmp_path / "g-int8.onnx"))
    assert sorted(os.listdir(tmp_path)) == ["g-int8.onnx", "g.onnx"]  # no temporary file left
    proto = onnx.load(path)
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # The weights are stored as int8.
    assert any(t.data_type == onnx.TensorProto.INT8 for t in proto.graph.initializer)
    meta = read_metadata(path)
    assert meta["precision"] == "int8" and "parity_max_abs_error" not in meta
    assert {k: v for k, v in meta.items() if k != "precision"} == {
        k: v for k, v in read_metadata(fp32).items() if k not in ("precision", "parity_max_abs_error", "parity_tolerance")
    }
    a, b = OnnxGenerator(fp32), OnnxGenerator(path)
    want, got = a.sample(64, seed=3), b.sample(64, seed=3)
    assert got.shape == want.shape and np.all(np.isfinite(got))
    error = np.abs(got - want)
    # int8 weights and uint8 activations: close to the fp32 images, not equal to them.
    assert 0 < error.mean() < 0.03 and error.max() < 0.35, (error.mean(), error.max())


def test_a_file_that_makes_nan_images_has_an_infinite_fid(trained_generators, tmp_path):
    """A broken quantisation (here: NaN written into the weights) can never pass the quality rule."""
    fp32 = to_onnx(trained_generators["dcgan"], tmp_path / "g.onnx").path
    proto = onnx.load(fp32)
    for init in proto.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and np.prod(init.dims) > 100:
            values = np.full(tuple(init.dims), np.nan, np.float32)
            init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
            break
    broken = str(tmp_path / "broken.onnx")
    onnx.save(proto, broken)

    class Features:  # the domain classifier's role: images -> features (here the flattened pixels)
        @staticmethod
        def features(images):
            return np.asarray(images, np.float64).reshape(len(images), -1)

    real = OnnxGenerator(fp32).sample(200, seed=1)
    fids = int8.domain_fids({"fp32": fp32, "broken": broken}, Features, real, samples=200)
    assert np.isfinite(fids["fp32"]) and fids["broken"] == float("inf")


# -- zoo export --int8 ---------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real `zoo train vae` run directory on the digits (2 epochs), and a classifier cache."""
    from zoo import training

    out = tmp_path_factory.mktemp("run") / "run"
    training.train("vae", epochs=2, out=str(out), latent_dim=4, batch_size=64, verbose=0)
    return out, tmp_path_factory.mktemp("classifier-cache")


@pytest.fixture
def run_dir(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run[0], copy)
    return copy


def zoo_export(*args, cache):
    return subprocess.run([sys.executable, "-m", "zoo_cli", "export", *map(str, args), "--cache-dir", str(cache)],
                          capture_output=True, text=True, timeout=600)


def test_zoo_export_int8_keeps_the_file_only_if_the_gate_says_so(run_dir, trained_run):
    """The real gate on this machine: whichever way it decides, what is on disk, in export.json and in the
    message agree with the figures it measured."""
    proc = zoo_export(run_dir, "--int8", "--int8-samples", "400", cache=trained_run[1])
    out = run_dir / "export"
    report = json.loads((out / "export.json").read_text())
    gate = report["int8_gate"]
    assert gate["samples"] == 400 and gate["path"] == "vae-int8.onnx" and gate["classifier_test_accuracy"] > 0.9
    rule_holds = (abs(gate["domain_fid"]["int8"] / gate["domain_fid"]["fp32"] - 1) <= 0.05
                  and gate["images_per_s"]["int8"] > gate["images_per_s"]["fp32"])
    assert gate["offered"] is rule_holds
    # The fp32 file and the SavedModel are written either way, and no temporary file is left.
    assert {"saved_model", "vae.onnx"} <= set(os.listdir(out)) and not [n for n in os.listdir(out) if n.startswith(".tmp")]
    if gate["offered"]:
        assert proc.returncode == 0, proc.stderr
        meta = read_metadata(out / "vae-int8.onnx")
        assert meta["precision"] == "int8" and meta["int8_gate"]["offered"] is True
        assert "vae-int8.onnx" in report["artifacts"] and "domain FID" in proc.stdout
    else:
        assert proc.returncode == 2
        err = proc.stderr.strip().splitlines()[-1]
        assert err.startswith("zoo export: error: vae-int8.onnx not written:") and int8.RULE in err
        assert not (out / "vae-int8.onnx").exists() and "vae-int8.onnx" not in report["artifacts"]
        assert "wrote" in proc.stdout and "vae.onnx" in proc.stdout  # what was written is still reported
    # Each stage of the gate was announced.
    for stage in ("domain FID of 400 fp32 samples", "domain FID of 400 int8 samples", "timing fp32 and int8"):
        assert f"zoo export: int8 gate: {stage}" in proc.stderr


@pytest.fixture
def forced_verdict(monkeypatch):
    """Replaces the measurement (FID and timing) by a chosen verdict, to test what is done with each."""
    chosen = {}

    def judge(fp32_path, int8_path, classifier, real_images, samples=int8.SAMPLES, progress=None, **_):
        assert os.path.isfile(int8_path) and read_metadata(int8_path)["precision"] == "int8"
        return verdict(**chosen["figures"])

    monkeypatch.setattr(int8, "judge", judge)
    return chosen


def test_an_offered_file_is_recorded_and_a_refused_one_removes_the_earlier_file(run_dir, trained_run, forced_verdict):
    from export.runs import Int8NotOffered, export_run

    cache = str(trained_run[1])
    forced_verdict["figures"] = {}
    results = export_run(run_dir, formats="onnx", int8=True, int8_samples=50, cache_dir=cache)
    out = run_dir / "export"
    assert [r.precision for r in results] == ["fp32", "int8"]
    assert read_metadata(out / "vae-int8.onnx")["int8_gate"]["speedup"] == pytest.approx(1.5)
    report = json.loads((out / "export.json").read_text())
    assert set(report["artifacts"]) == {"vae.onnx", "vae-int8.onnx"} and report["int8_gate"]["offered"] is True

    # Exported again (--overwrite), the new int8 file fails the rule: the old one, quantised from the fp32
    # file just replaced, goes too, and the report says so.
    forced_verdict["figures"] = {"fid_int8": 11.0}
    with pytest.raises(Int8NotOffered, match="its samples are worse") as refused:
        export_run(run_dir, formats="onnx", int8=True, int8_samples=50, cache_dir=cache, overwrite=True)
    assert [r.precision for r in refused.value.results] == ["fp32"]
    assert sorted(os.listdir(out)) == ["export.json", "vae.onnx"]
    report = json.loads((out / "export.json").read_text())
    assert set(report["artifacts"]) == {"vae.onnx"}
    assert report["int8_gate"]["offered"] is False and report["int8_gate"]["removed_earlier_file"] is True


def test_an_int8_file_of_the_users_is_never_replaced(run_dir, trained_run, forced_verdict):
    from export.runs import export_run

    forced_verdict["figures"] = {}
    (run_dir / "export").mkdir()
    mine = run_dir / "export" / "vae-int8.onnx"
    mine.write_bytes(b"my own file")
    with pytest.raises(FileExistsError, match="not written by genzoo"):
        export_run(run_dir, formats="onnx", int8=True, overwrite=True, cache_dir=str(trained_run[1]))
    assert mine.read_bytes() == b"my own file" and sorted(os.listdir(run_dir / "export")) == ["vae-int8.onnx"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--int8", "--fp16"], "int8 is quantised from the fp32 ONNX file"),
        (["--int8", "--format", "savedmodel"], "int8 is quantised from the fp32 ONNX file"),
        (["--int8", "--int8-samples", "1"], "int8_samples=1 must be an integer >= 2"),
        (["--int8-samples", "100"], "add --int8"),
        (["--int8", "--web"], "export --int8 in a second command"),
    ],
)
def test_bad_int8_options_give_one_line_and_write_nothing(run_dir, args, message, capsys):
    from zoo_cli.main import main

    assert main(["export", str(run_dir), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo export: error:") and message in err and "\n" not in err
    assert not (run_dir / "export").exists()


def test_an_autoencoder_run_is_refused_with_what_to_do(tmp_path, capsys):
    from zoo import training
    from zoo_cli.main import main

    out = tmp_path / "ae"
    training.train("ae", epochs=1, out=str(out), latent_dim=4, batch_size=256, verbose=0)
    assert main(["export", str(out), "--int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "without a prior" in err and "without --int8" in err and "\n" not in err
    assert not (out / "export").exists()
