"""The `zoo` command as a package: what `zoo --help` loads, the backend choice,
and the house's one-way arrows (zoo never imports export or the CLI)."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

from zoo_cli import backends, train

REPO = pathlib.Path(__file__).resolve().parents[1]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def zoo(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "zoo_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env or QUIET, timeout=timeout)


def imported_modules(*args):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "zoo_cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=QUIET, timeout=120)
    return done, [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["evaluate", "--help"], ["export", "--help"]])
def test_help_imports_neither_keras_nor_tensorflow(args):
    done, imported = imported_modules(*args)
    assert done.returncode == 0 and "usage: zoo" in done.stdout
    assert "zoo_cli.main" in imported  # the import log is real
    assert not [m for m in imported if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch", "zoo", "export")]


def test_the_cli_model_names_are_the_registry():
    from zoo import registry

    assert tuple(registry.MODELS) == train.MODEL_NAMES


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package, forbidden", [
    ("zoo", {"export", "zoo_cli"}),
    ("export", {"zoo_cli"}),
    ("zoo_common", {"zoo", "export", "zoo_cli", "keras", "tensorflow"}),
])
def test_arrows_run_one_way(package, forbidden):
    """CLI -> export -> zoo -> zoo_common: no import runs back up."""
    found = {str(p.relative_to(REPO)): sorted(set(_imports(p)) & forbidden) for p in (REPO / package).rglob("*.py")}
    assert {p: f for p, f in found.items() if f} == {}


def test_an_unknown_backend_is_one_line_naming_it(tmp_path):
    done = zoo("train", "vae", "--epochs", "1", "--out", tmp_path / "r", env={**QUIET, "KERAS_BACKEND": "theano"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "zoo train: error: KERAS_BACKEND='theano' is not a Keras backend genzoo runs on; "
        "use one of tensorflow, jax, torch."
    ]
    assert not (tmp_path / "r").exists()


def test_a_missing_backend_says_what_to_install(monkeypatch):
    monkeypatch.setitem(backends.BACKENDS, "jax", ("a_package_that_is_not_installed", "pip install jax"))
    with pytest.raises(ValueError, match=r"^--backend=jax: a_package_that_is_not_installed is not installed here; "
                                         r"pip install jax, or choose another backend\.$"):
        backends.select("jax")


def test_the_host_device_count_replaces_an_earlier_one_and_keeps_the_other_xla_flags():
    flags = "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=4 --xla_dump_to=/tmp/x"
    assert backends.xla_flags_with_host_devices(flags, 2) == (
        "--xla_backend_optimization_level=0 --xla_dump_to=/tmp/x --xla_force_host_platform_device_count=2")
    assert backends.xla_flags_with_host_devices(None, 3) == "--xla_force_host_platform_device_count=3"


@pytest.mark.skipif(any(__import__("importlib.util").util.find_spec(b) is None for b in ("jax", "torch")),
                    reason="needs jax and torch (pip install -e '.[test]')")
def test_train_on_jax_resume_on_torch_and_the_config_records_both(tmp_path):
    out = tmp_path / "run"
    first = zoo("train", "vae", "--backend", "jax", "--epochs", "1", "--take", "128", "--batch-size", "32",
                "--no-validation", "--out", out)
    assert first.returncode == 0, first.stderr[-3000:]
    second = zoo("train", "vae", "--backend", "torch", "--epochs", "2", "--out", out, "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "jax" and config["versions"]["keras_backend"] == "jax"
    assert [r["backend"] for r in config["resumed"]] == ["torch"]
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0, 1] and all(v is not None for v in history["history"]["loss"])
    # The optimizer state came along: 4 steps per epoch, 8 in all.
    check = subprocess.run([sys.executable, "-c", "import keras, zoo; "
                            f"print(keras.saving.load_model({str(out / 'model.keras')!r}).training_steps)"],
                           capture_output=True, text=True, env={**QUIET, "KERAS_BACKEND": "torch"}, timeout=300)
    assert check.stdout.strip().splitlines()[-1] == "8", check.stderr[-2000:]
