"""Conditional VAE and DCGAN (`num_classes`): trained on (images, labels), they make images of the
class asked for ("ask for 7s, get 7s"), judged by a classifier trained on the real digits; labels in
arrays, dicts and tf.data pipelines; one clear error for each mistake. (One training step agrees
across TensorFlow, JAX and PyTorch, and `.keras` files load on every backend: tests/test_backends.py.)
"""

import numpy as np
import pytest

import keras
import zoo
from zoo.data import digits_arrays

SMALL = {
    "vae": (zoo.VAE, {"latent_dim": 8, "filters": (16, 32), "hidden_dim": 64}),
    "dcgan": (zoo.DCGAN, {"latent_dim": 8, "generator_filters": (64, 32), "kernel_size": 3}),
}


def conditional(name):
    """A compiled conditional model of SMALL[name] for 8x8 digits, 10 classes."""
    cls, kwargs = SMALL[name]
    model = cls((8, 8, 1), num_classes=10, seed=0, **kwargs)
    model.compile_default()
    return model


@pytest.fixture(scope="module")
def digits():
    x, y = digits_arrays("train")[:2]
    return x, y.astype("int32")


@pytest.fixture(scope="module")
def judge(digits):
    from sklearn.linear_model import LogisticRegression

    x, y = digits
    xt, yt = digits_arrays("test")[:2]
    classifier = LogisticRegression(max_iter=2000).fit(x.reshape(len(x), -1), y)
    assert classifier.score(xt.reshape(len(xt), -1), yt) > 0.9
    return classifier


# Measured (30 epochs of the 1,438 training digits, batch 64, about 10 s each): the conditional VAE's
# samples are 100% of the class asked for, the conditional DCGAN's 94%; chance is 10%.
@pytest.mark.parametrize("name, bar", [("vae", 0.9), ("dcgan", 0.7)])
def test_samples_are_of_the_class_asked_for(digits, judge, name, bar):
    x, y = digits
    model = conditional(name)
    model.fit(x, y, batch_size=64, epochs=30, verbose=0)
    labels = np.repeat(np.arange(10), 50)
    images = keras.ops.convert_to_numpy(model.sample(500, seed=1, labels=labels))
    accuracy = float(np.mean(judge.predict(images.reshape(500, -1)) == labels))
    print(f"conditional {name}: {accuracy:.1%} of samples of the class asked for")
    assert accuracy >= bar
    # Without labels, every class in turn: 0, 1, ..., 9, 0, 1, ...
    mixed = keras.ops.convert_to_numpy(model.sample(500, seed=1))
    assert float(np.mean(judge.predict(mixed.reshape(500, -1)) == np.arange(500) % 10)) >= bar


@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_a_dataset_of_pairs_trains_and_the_model_round_trips(digits, name, tmp_path):
    import tensorflow as tf

    x, y = digits
    model = conditional(name)
    pairs = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(32)
    history = model.fit(pairs, validation_data=(x[:64], y[:64]), epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values()) and any(k.startswith("val_") for k in history)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.num_classes == 10
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.generate(z, [1, 2, 3, 4])),
                               keras.ops.convert_to_numpy(model.generate(z, [1, 2, 3, 4])), atol=1e-6)
    # The label is an input: the same z with another class is another image.
    assert np.abs(keras.ops.convert_to_numpy(model.generate(z, 1)) - keras.ops.convert_to_numpy(model.generate(z, 7))).max() > 1e-3


def test_the_conditional_vae_encodes_with_the_label(digits):
    x, y = digits
    model = conditional("vae")
    mean, log_var = model.encode(x[:4], y[:4])
    assert mean.shape == log_var.shape == (4, 8)
    log_w = model.log_importance_weights(x[:4], np.zeros((3, 4, 8), "float32"), labels=y[:4])
    assert log_w.shape == (3, 4) and np.all(np.isfinite(keras.ops.convert_to_numpy(log_w)))


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: m.sample(4, labels=10), "labels hold 10 at index 0, outside the classes 0..9"),
    (lambda m, x, y: m.sample(4, labels=[1, 2]), "labels must hold one class per image, shape (4,); got shape (2,)."),
    (lambda m, x, y: m.sample(4, labels=np.ones(4, "float32")), "labels must be integer class indices in 0..9"),
    (lambda m, x, y: m.generate(np.zeros((2, 8), "float32")), "DCGAN(num_classes=10) is conditional: pass labels="),
    (lambda m, x, y: m.fit(x, epochs=1, verbose=0), "fit: the model is conditional (num_classes=10) and learns from "
                                                    "labelled images: pass fit(images, labels)"),
    (lambda m, x, y: m.fit(x[:8], np.arange(8) + 5, epochs=1, verbose=0),
     "fit: labels hold 10 at index 5, outside the classes 0..9 (3 such labels)."),
], ids=["out-of-range", "count", "float", "missing", "fit-without-labels", "fit-out-of-range"])
def test_label_mistakes_get_one_clear_error(digits, call, message):
    x, y = digits
    model = conditional("dcgan")
    with pytest.raises(ValueError) as err:
        call(model, x, y)
    assert message in str(err.value)


def test_an_unconditional_model_refuses_labels():
    model = zoo.VAE((8, 8, 1), seed=0, **SMALL["vae"][1])
    with pytest.raises(ValueError, match=r"VAE.sample: VAE is not conditional \(built without num_classes\); drop labels="):
        model.sample(4, labels=3)


def test_a_dataset_with_a_label_out_of_range_stops_fit(digits):
    import tensorflow as tf

    x, y = digits
    model = conditional("vae")
    bad = tf.data.Dataset.from_tensor_slices((x[:64], np.where(np.arange(64) == 40, 12, y[:64]))).batch(16)
    with pytest.raises(Exception, match=r"fit: labels of 10 or more, outside classes 0\.\.9"):
        model.fit(bad, epochs=1, verbose=0)


# -- the command line: zoo train --conditional, zoo evaluate, zoo export ------------------------------------------

def zoo_cli(*args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, "-m", "zoo_cli", *map(str, args)], cwd=Path(__file__).resolve().parents[1],
                          env=env, capture_output=True, text=True, timeout=600)


def test_zoo_train_conditional_evaluate_and_export(tmp_path):
    import json

    from PIL import Image

    run = tmp_path / "run"
    done = zoo_cli("train", "vae", "--conditional", "--dataset", "digits", "--epochs", "1", "--take", "256",
                   "--batch-size", "32", "--out", run)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["conditional"] is True and config["model_config"]["num_classes"] == 10
    # samples.png: one row of 8 per class, so 10 rows by 8 columns (taller than wide).
    width, height = Image.open(run / "samples.png").size
    assert height > width
    again = zoo_cli("train", "vae", "--out", run, "--epochs", "2", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((run / "history.json").read_text())["epoch"] == [0, 1]

    evaluated = zoo_cli("evaluate", run, "--n-samples", "500", "--cache-dir", tmp_path / "cache")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    results = json.loads((run / "eval.json").read_text())
    assert 0.0 <= results["conditional"]["accuracy"] <= 1.0 and len(results["conditional"]["per_class"]) == 10
    assert "likelihood" not in results and "samples of the class asked for (conditional)" in evaluated.stdout

    exported = zoo_cli("export", run)
    assert exported.returncode == 0, exported.stderr[-3000:]
    sevens = zoo_cli("generate", run / "export" / "vae.onnx", "--label", "7", "-n", "16", "-o", tmp_path / "7.npy")
    assert sevens.returncode == 0, sevens.stderr[-3000:]
    assert np.load(tmp_path / "7.npy").shape == (16, 8, 8, 1)
    wrong = zoo_cli("generate", run / "export" / "vae.onnx", "--label", "12", "-o", tmp_path / "12.png")
    assert wrong.returncode == 2 and not (tmp_path / "12.png").exists()
    assert wrong.stderr.strip().splitlines()[-1].endswith("labels hold 12 at index 0, outside the classes 0..9 (64 such labels).")
    web = zoo_cli("export", run, "--web", "--overwrite")  # the page itself: tests/test_web.py, in Chromium
    assert web.returncode == 0, web.stderr[-3000:]
    assert (run / "export" / "web" / "index.html").is_file()


def test_conditional_needs_a_model_that_has_one(tmp_path):
    done = zoo_cli("train", "ae", "--conditional", "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("zoo train: error: --conditional: ae has no conditional form; "
                                                    "the conditional models are vae and dcgan.")


@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_exported_files_take_the_labels_as_a_second_input(digits, name, tmp_path):
    import tensorflow as tf

    from export import OnnxGenerator, to_onnx, to_saved_model

    x, y = digits
    model = conditional(name)
    model.fit(x[:256], y[:256], batch_size=32, epochs=1, verbose=0)
    onnx_file = to_onnx(model, str(tmp_path / "g.onnx"))
    assert onnx_file.max_abs_error <= 1e-5 and onnx_file.metadata["num_classes"] == 10
    assert onnx_file.metadata["labels_name"] == "labels"
    saved = to_saved_model(model, str(tmp_path / "saved"))
    assert saved.max_abs_error <= 1e-5

    z = np.random.default_rng(0).standard_normal((40, 8)).astype("float32")
    labels = np.arange(40) % 10
    want = keras.ops.convert_to_numpy(model.generate(z, labels))
    generator = OnnxGenerator(onnx_file.path, threads=2)  # 40 latents: split over two threads, labels with them
    assert generator.num_classes == 10
    np.testing.assert_allclose(generator.generate(z, labels=labels), want, atol=1e-5)
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    np.testing.assert_allclose(serve(z=tf.constant(z), labels=tf.constant(labels, tf.int64))["images"].numpy(), want,
                               atol=1e-5)
    assert generator.sample(30, seed=0, labels=4).shape == (30, 8, 8, 1)
    np.testing.assert_array_equal(generator.sample(20, seed=0), generator.sample(20, seed=0, labels=np.arange(20) % 10))
    with pytest.raises(ValueError, match="holds a conditional generator \\(10 classes\\): pass labels="):
        generator.generate(z)
    with pytest.raises(ValueError, match="labels must hold one class per latent, shape \\(40,\\)"):
        generator.generate(z, labels=[1, 2])
