"""Bounded memory, evaluation that never throws its work away, and a NaN model
named as such (issue 12, items 3 and 4, and the NaN export).

Real parts throughout: an exported ONNX file run in onnxruntime, the `zoo`
CLI in subprocesses, peak RSS measured by the kernel (getrusage), a real
terminal (a pty) for the progress bar. The one fault injected in-process is a
full disk at the very end of `zoo evaluate`, which this machine cannot make.
"""

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

import zoo
from export import to_onnx
from export.runtime import CHUNK_BYTES, MAX_CHUNK, OnnxGenerator
from zoo_common import grid

REPO = Path(__file__).resolve().parents[1]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
HEAVY = ("tensorflow", "keras", "tf2onnx")


def zoo_cli(*args, timeout=300, prefix=()):
    return subprocess.run([sys.executable, *prefix, "-m", "zoo_cli", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=QUIET, timeout=timeout)


def error_line(done, command):
    """The one error line of a failed `zoo COMMAND`, which must be the last line of stderr."""
    errors = [line for line in done.stderr.splitlines() if line.startswith(f"zoo {command}: error:")]
    assert len(errors) == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == errors[0], done.stderr
    return errors[0]


def snapshot(directory):
    directory = Path(directory)
    return {str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes() for p in directory.rglob("*")}


def tiny_dcgan():
    model = zoo.DCGAN((16, 16, 3), 8, generator_filters=(8, 4), discriminator_filters=(4, 8), kernel_size=3, seed=0)
    model.compile()
    model.fit(np.random.default_rng(0).uniform(size=(32, 16, 16, 3)).astype("float32"), epochs=1, batch_size=16,
              verbose=0)
    return model


def poison(model):
    """Set one generator weight to NaN, as a diverged training leaves it."""
    variable = model.generator.weights[0]
    value = np.array(variable.numpy())
    value.flat[0] = np.nan
    variable.assign(value)
    return model


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return to_onnx(tiny_dcgan(), tmp_path_factory.mktemp("onnx") / "dcgan.onnx", dataset="noise").path


@pytest.fixture(scope="module")
def nan_onnx_file(onnx_file, tmp_path_factory):
    """The same generator with one weight NaN (written with onnx: export itself now refuses such a model)."""
    model = onnx.load(onnx_file)
    weight = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and np.prod(t.dims) > 8)
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] = np.nan
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    path = tmp_path_factory.mktemp("nan") / "dcgan.onnx"
    onnx.save(model, path)
    return str(path)


class CountingSession:
    """An onnxruntime session whose `run` calls are recorded (batch sizes), and otherwise itself."""

    def __init__(self, session):
        self._session, self.batches = session, []

    def run(self, outputs, feeds):
        self.batches.append(len(next(iter(feeds.values()))))
        return self._session.run(outputs, feeds)

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.fixture
def counted(onnx_file):
    generator = OnnxGenerator(onnx_file, threads=1)  # one call per chunk; the split across cores: test_runtime_parallel
    generator._session = CountingSession(generator._session)
    return generator


# -- the runtime streams in chunks --------------------------------------------------------------------------------

def test_the_default_chunk_keeps_one_calls_output_within_16_mib(onnx_file):
    generator = OnnxGenerator(onnx_file)
    assert CHUNK_BYTES == 16 * 2**20 and MAX_CHUNK == 1024
    assert generator.chunk_size() == 1024  # 16x16x3 float32: 3 KiB an image, so the cap of 1024 applies
    assert generator.chunk_size(7) == 7
    generator.image_shape = (256, 256, 3)  # 768 KiB an image: the output bound applies
    assert generator.chunk_size() == 21 and 21 * 4 * 256 * 256 * 3 <= CHUNK_BYTES < 22 * 4 * 256 * 256 * 3
    generator.image_shape = (4096, 4096, 3)  # one image is over the bound: still one at a time
    assert generator.chunk_size() == 1
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch_size="):
            generator.chunk_size(bad)


def test_sample_runs_in_bounded_chunks_and_equals_one_call(counted):
    n = 2500
    images = counted.sample(n, seed=3)
    assert counted._session.batches == [1024, 1024, 452]
    one_call = counted._session._session.run(["images"], {"z": counted.sample_latents(n, seed=3)})[0]
    np.testing.assert_array_equal(images, one_call)  # bit-equal to the single call it replaces

    counted._session.batches.clear()
    z = counted.sample_latents(40, seed=4)
    np.testing.assert_array_equal(counted.generate(z, batch_size=7), counted.generate(z))
    assert counted._session.batches == [7] * 5 + [5] + [40]


def test_iter_samples_is_lazy_and_gives_the_images_of_sample(counted):
    chunks = counted.iter_samples(2100, seed=5, batch_size=500)
    first = next(chunks)
    assert counted._session.batches == [500] and first.shape == (500, 16, 16, 3)  # one chunk made, not all
    rest = list(chunks)
    assert [len(c) for c in rest] == [500, 500, 500, 100]
    np.testing.assert_array_equal(np.concatenate([first, *rest]), counted.sample(2100, seed=5))
    with pytest.raises(ValueError, match="n=0"):
        next(counted.iter_samples(0))


def test_generating_200k_images_to_npy_keeps_peak_memory_far_below_the_array(onnx_file, tmp_path):
    """The kernel's peak RSS of `zoo generate -n 200000 -o big.npy`: the array is 614 MB, the process must stay
    a fraction of it (a single onnxruntime call, as before, peaked at about 1.8 GB here)."""
    n, out = 200_000, tmp_path / "big.npy"
    measure = textwrap.dedent(f"""
        import resource, subprocess, sys
        done = subprocess.run([sys.executable, "-m", "zoo_cli", "generate", {onnx_file!r}, "-n", "{n}",
                               "--seed", "1", "-o", {str(out)!r}], capture_output=True, text=True)
        print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, repr(done.stderr[-2000:]))
    """)  # a wrapper process, so that RUSAGE_CHILDREN holds zoo generate alone
    done = subprocess.run([sys.executable, "-c", measure], capture_output=True, text=True, cwd=REPO, timeout=300)
    code, peak_kib, stderr = done.stdout.split(" ", 2)
    assert code == "0", stderr
    array_bytes = n * 16 * 16 * 3 * 4
    peak = int(peak_kib) * 1024
    assert out.stat().st_size == array_bytes + 128  # header + data, nothing else
    assert peak < 0.35 * array_bytes, f"peak RSS {peak / 2**20:.0f} MiB for a {array_bytes / 2**20:.0f} MiB array"
    # And the file holds exactly the runtime's images, checked chunk by chunk (bounded here too).
    stored = np.load(out, mmap_mode="r")
    assert stored.shape == (n, 16, 16, 3) and stored.dtype == np.float32
    start = 0
    for chunk in OnnxGenerator(onnx_file).iter_samples(n, seed=1):
        np.testing.assert_array_equal(stored[start : start + len(chunk)], chunk)
        start += len(chunk)
    assert start == n


# -- zoo generate: a grid of a sane size, else an .npy or a folder -------------------------------------------------

def test_a_grid_over_1024_images_is_refused_with_the_alternatives(onnx_file, tmp_path):
    done = zoo_cli("generate", onnx_file, "-n", "1025", "-o", tmp_path / "grid.png")
    assert done.returncode == 2
    assert error_line(done, "generate") == (
        "zoo generate: error: -n 1025: a PNG grid holds at most 1,024 images; write an array (-o OUT.npy) "
        "or one PNG per image (--format folder -o DIR) instead.")
    tall = zoo_cli("generate", onnx_file, "-n", "1000", "--ncols", "1", "-o", tmp_path / "tall.png")
    assert tall.returncode == 2 and "over the limit of 16,384 a side" in error_line(tall, "generate")
    assert list(tmp_path.iterdir()) == []
    done = zoo_cli("generate", onnx_file, "-n", "1024", "-o", tmp_path / "grid.png")
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "grid.png") as png:
        assert png.size == (32 * 34 + 2, 32 * 34 + 2)
    help_text = zoo_cli("generate", "--help").stdout
    assert "at most 1,024 images and 16,384 pixels a side" in help_text and "OUT.npy -> npy" in help_text


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_npy_output_holds_the_runtime_images_and_loads_no_tensorflow(onnx_file, tmp_path, dtype):
    out = tmp_path / "samples.npy"
    done = zoo_cli("generate", onnx_file, "-n", "2500", "--seed", "2", "--dtype", dtype, "-o", out,
                   prefix=("-X", "importtime"))
    assert done.returncode == 0, done.stderr
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "onnxruntime" in imported and not [m for m in imported if m.split(".")[0] in HEAVY]
    assert f"wrote {out}: 2500 images of dcgan (fp32, seed 2), array 2500x16x16x3 {dtype}" in done.stdout
    expected = OnnxGenerator(onnx_file).sample(2500, seed=2)
    stored = np.load(out)
    assert stored.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(stored, expected if dtype == "float32" else grid.to_uint8(expected))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npy"]  # no temporary file left


def test_npy_output_keeps_existing_files_and_never_replaces_a_directory(onnx_file, tmp_path):
    out = tmp_path / "samples.npy"
    out.write_bytes(b"the user's array\n")
    refused = zoo_cli("generate", onnx_file, "-n", "10", "-o", out)
    assert refused.returncode == 2 and "already exists" in error_line(refused, "generate")
    assert out.read_bytes() == b"the user's array\n"
    refused = zoo_cli("generate", onnx_file, "-n", "10", "-o", out, "--overwrite")  # not genzoo's: kept
    assert refused.returncode == 2 and "was not written by genzoo" in error_line(refused, "generate")
    assert out.read_bytes() == b"the user's array\n"
    out.unlink()
    for extra in ([], ["--overwrite"]):  # its own .npy, --overwrite replaces
        done = zoo_cli("generate", onnx_file, "-n", "10", "-o", out, *extra)
        assert done.returncode == 0 and np.load(out).shape == (10, 16, 16, 3)

    folder = tmp_path / "arrays.npy"
    (folder / "keep").mkdir(parents=True)
    (folder / "keep" / "a.npy").write_bytes(b"kept\n")
    before = snapshot(tmp_path)
    refused = zoo_cli("generate", onnx_file, "-n", "10", "-o", folder, "--overwrite")
    assert refused.returncode == 2
    assert error_line(refused, "generate") == (
        f"zoo generate: error: {folder} is a directory; genzoo writes a file there only in place of a file. "
        "Give a file name instead.")
    assert snapshot(tmp_path) == before


def test_folder_output_writes_numbered_pngs_and_never_touches_a_users_folder(onnx_file, tmp_path):
    out = tmp_path / "samples"
    done = zoo_cli("generate", onnx_file, "-n", "12", "--seed", "7", "-o", f"{out}/")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(12)] + ["genzoo-images.json"]
    expected = grid.to_uint8(OnnxGenerator(onnx_file).sample(12, seed=7))
    for i in (0, 11):
        with Image.open(out / f"{i:06d}.png") as png:
            np.testing.assert_array_equal(np.asarray(png), expected[i])
    manifest = json.loads((out / "genzoo-images.json").read_text())
    assert manifest["written_by"] == "genzoo" and manifest["n"] == 12 and manifest["seed"] == 7

    # Again without --overwrite: refused. With it: genzoo's own folder is replaced (old names gone).
    refused = zoo_cli("generate", onnx_file, "-n", "3", "--format", "folder", "-o", out)
    assert refused.returncode == 2 and "not empty" in error_line(refused, "generate")
    assert len(list(out.iterdir())) == 13
    done = zoo_cli("generate", onnx_file, "-n", "3", "--format", "folder", "-o", out, "--overwrite")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "000002.png", "genzoo-images.json"]

    # A user's file in it: --overwrite deletes nothing, not even genzoo's own images.
    (out / "notes.txt").write_bytes(b"my notes\n")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "000000.png").write_bytes(b"a holiday photo\n")  # a name genzoo would use, but no manifest
    before = snapshot(tmp_path)
    for folder, reason in ((out, f"holds {out / 'notes.txt'}, which genzoo did not write"),
                           (photos, "has no genzoo-images.json of genzoo's")):
        refused = zoo_cli("generate", onnx_file, "-n", "3", "--format", "folder", "-o", folder, "--overwrite")
        assert refused.returncode == 2
        line = error_line(refused, "generate")
        assert reason in line and "nothing was deleted" in line
    assert snapshot(tmp_path) == before

    empty = tmp_path / "empty"
    empty.mkdir()
    done = zoo_cli("generate", onnx_file, "-n", "2", "--format", "folder", "-o", empty)
    assert done.returncode == 0 and len(list(empty.iterdir())) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_generator_with_nan_weights_writes_nothing(nan_onnx_file, tmp_path):
    for out in (tmp_path / "g.png", tmp_path / "g.npy", f"{tmp_path / 'g'}/"):
        done = zoo_cli("generate", nan_onnx_file, "-n", "3000" if str(out).endswith(".npy") else "8", "-o", out)
        assert done.returncode == 2
        assert error_line(done, "generate") == (
            f"zoo generate: error: {nan_onnx_file} gives NaN/inf images (its weights are not finite: the training "
            "diverged?); nothing was written. Export a run whose model.keras is finite.")
    assert list(tmp_path.iterdir()) == []  # not even a temporary file


# -- a NaN model is named at export and at evaluation ------------------------------------------------------------

@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    """A run directory whose model.keras diverged: one NaN weight, otherwise a trained DCGAN."""
    run = tmp_path_factory.mktemp("nan-run") / "run"
    run.mkdir()
    poison(tiny_dcgan()).save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": "dcgan", "dataset": "digits"}))
    return run


def test_exporting_a_nan_model_names_the_model_not_the_parity_check(nan_run, tmp_path):
    from export.source import ParityError

    done = zoo_cli("export", nan_run, "--format", "savedmodel,onnx")
    assert done.returncode == 2
    assert error_line(done, "export") == (
        f"zoo export: error: {nan_run / 'model.keras'} has NaN/inf weights (training diverged?); nothing exported. "
        "Retrain with a lower --lr (and inputs in [0, 1]), or use a copy of the run saved before it diverged.")
    assert sorted(p.name for p in nan_run.iterdir()) == ["config.json", "model.keras"]
    # The library functions say the same, not "differs from the Keras model" (a ParityError).
    model = poison(tiny_dcgan())
    with pytest.raises(ValueError, match=r"has NaN/inf weights \(training diverged\?\); nothing exported") as err:
        to_onnx(model, tmp_path / "x.onnx")
    assert not isinstance(err.value, ParityError) and not (tmp_path / "x.onnx").exists()


def test_evaluating_a_nan_model_is_refused_before_any_work(nan_run):
    done = zoo_cli("evaluate", nan_run)
    assert done.returncode == 2
    line = error_line(done, "evaluate")
    assert line.startswith(f"zoo evaluate: error: {nan_run / 'model.keras'} has NaN/inf weights (training "
                           "diverged?); nothing evaluated.")
    assert "evaluate: " not in done.stderr.replace(line, "")  # no stage started
    assert not (nan_run / "eval.json").exists()


# -- zoo evaluate: checks its output first, prints its table even when the write fails, reports progress ----------

@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from zoo import training

    out = tmp_path_factory.mktemp("runs") / "vae"
    training.train("vae", dataset="digits", epochs=1, out=str(out), latent_dim=4, verbose=0)
    return out


def private_copy(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def test_evaluate_refuses_an_unwritable_output_before_computing(vae_run, tmp_path):
    run = private_copy(vae_run, tmp_path)
    (run / "eval.json").mkdir()
    (run / "eval.json" / "mine.txt").write_bytes(b"mine\n")
    done = zoo_cli("evaluate", run, "--k", "5000")
    assert done.returncode == 2
    line = error_line(done, "evaluate")
    assert line == (f"zoo evaluate: error: {run / 'eval.json'} is a directory, where the figures are written; "
                    "nothing was evaluated. Move that directory away and run again.")
    assert "evaluate: " not in done.stderr.replace(line, "")  # refused before the first stage
    assert (run / "eval.json" / "mine.txt").read_bytes() == b"mine\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_evaluate_refuses_a_read_only_run_before_computing(vae_run, tmp_path):
    run = private_copy(vae_run, tmp_path)
    run.chmod(0o555)
    try:
        done = zoo_cli("evaluate", run)
    finally:
        run.chmod(0o755)
    assert done.returncode == 2
    assert f"cannot write {run / 'eval.json'}" in error_line(done, "evaluate")
    assert "nothing was evaluated" in done.stderr


def test_a_failed_final_write_still_prints_the_table_and_exits_2(vae_run, tmp_path, capsys, monkeypatch):
    """The disk fills up while the figures are computed: the table still reaches stdout. (The full disk is
    injected into zoo_common.files.write_json, for eval.json only: this machine cannot fill a disk.)"""
    from zoo_cli.main import main as zoo_main
    from zoo_common import files

    run = private_copy(vae_run, tmp_path)
    real_write_json = files.write_json

    def full_disk(data, path):
        if os.path.basename(path) == "eval.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write_json(data, path)

    monkeypatch.setattr(files, "write_json", full_disk)
    code = zoo_main(["evaluate", str(run), "--k", "5000", "--n-likelihood", "40", "--n-samples", "300",
                     "--cache-dir", str(tmp_path / "cache")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "-log p(x) IWAE (nats; k=5000, 40 test images" in out and "domain FID / KID" in out
    assert err.strip().splitlines()[-1] == (
        f"zoo evaluate: error: the evaluation finished but {run / 'eval.json'} could not be written "
        "(No space left on device); the figures are in the table above.")
    assert not (run / "eval.json").exists()
    # Not a terminal here: one line per stage, and per 10% of the long ones.
    iwae = [line for line in err.splitlines() if line.startswith("evaluate: -log p(x) by IWAE, k=5,000 on 40 images:")]
    assert [line.split(": ")[2].split("%")[0] for line in iwae] == [str(p) for p in range(10, 101, 10)]
    assert "evaluate: generating images for FID/KID and coverage (300 images)" in err
    assert any(line.startswith("evaluate: generating images for FID/KID and coverage: 100% (300/300")
               for line in err.splitlines())


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log(monkeypatch):
    from zoo.evaluate import Progress

    log = io.StringIO()
    progress = Progress("IWAE", 1000, unit="samples", stream=log)
    for _ in range(40):
        progress.advance(25)
    lines = log.getvalue().splitlines()
    assert lines[0] == "evaluate: IWAE (1,000 samples)"
    assert [line.split(": ")[2].split(" ")[0] for line in lines[1:]] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[-1].startswith("evaluate: IWAE: 100% (1,000/1,000 samples, ")
    silent = io.StringIO()
    Progress("IWAE", 1000, enabled=False, stream=silent).advance(1000)
    assert silent.getvalue() == ""

    # A real terminal (a pseudo-terminal) on stdout: a Keras progress bar there, only the stage line in the log.
    master, slave = os.openpty()
    terminal = os.fdopen(slave, "w")
    monkeypatch.setattr(sys, "stdout", terminal)
    log = io.StringIO()
    progress = Progress("IWAE", 1000, unit="samples", stream=log)
    progress.advance(500)
    progress.advance(500)
    terminal.flush()
    # Read all the bar wrote: one read may return only its first update.
    import select

    chunks = []
    while select.select([master], [], [], 1.0)[0]:
        chunks.append(os.read(master, 65536))
        if b"1000/1000" in b"".join(chunks):
            break
    shown = b"".join(chunks).decode()
    monkeypatch.undo()
    terminal.close()
    os.close(master)
    assert log.getvalue().splitlines() == ["evaluate: IWAE (1,000 samples)"]
    assert "1000/1000" in shown, shown


def test_grid_limits_are_stated_once():
    assert grid.MAX_GRID_IMAGES == 1024 and grid.MAX_GRID_SIDE == 16384
    assert grid.grid_size(1024, (16, 16, 3)) == (32 * 34 + 2, 32 * 34 + 2)
    assert grid.grid_size(10, (16, 16, 3)) == grid.make_grid(np.zeros((10, 16, 16, 3))).shape[:2]
    grid.check_grid(1024, (16, 16, 3))
    with pytest.raises(ValueError, match="at most 1,024 images"):
        grid.check_grid(1025)
    with pytest.raises(ValueError, match="16,384 a side"):
        grid.check_grid(600, (28, 28, 1), ncols=1)
