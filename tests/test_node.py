"""The exported generator in Node.js: real ONNX files run in onnxruntime-node (a `node`
subprocess) give Python's images; the web page's latent maths give Python's latents.

Needs `node` and tests/js/node_modules (cd tests/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci);
skips, saying so, without them. .ci/run installs them.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

import zoo
from export import to_onnx
from export.runtime import OnnxGenerator
from export.web import seeded_latents, write_web
from tests import web_helpers
from zoo_common.latents import interpolate_latents

REPO = pathlib.Path(__file__).resolve().parents[1]
JS = REPO / "tests" / "js"
NODE_MODULES = JS / "node_modules"
PAGE_SCRIPT = REPO / "export" / "web_template" / "genzoo-web.js"
INSTALL = "cd tests/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci"


def _missing():
    if shutil.which("node") is None:
        return "Node.js is not installed (node not on PATH)"
    if not (NODE_MODULES / "onnxruntime-node").is_dir():
        return f"onnxruntime-node is not installed in tests/js/node_modules; run: {INSTALL}"
    return None


# Under .ci/run (GENZOO_REQUIRE_JS_TESTS) nothing skips: a missing piece fails.
pytestmark = pytest.mark.skipif(web_helpers.skip_reason(_missing()) is not None,
                                reason=str(web_helpers.skip_reason(_missing())))


def node(script, request=None, cwd=JS, env=None):
    done = subprocess.run(
        ["node", str(script)], input=None if request is None else json.dumps(request), capture_output=True,
        text=True, cwd=cwd, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def train_a_few_steps(model, images, epochs=2):
    model.compile_default()
    model.fit(images, epochs=epochs, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module", params=["vae", "dcgan"])
def onnx_file(request, digits, tmp_path_factory):
    """A trained VAE decoder (8x8x1) and an RGB DCGAN generator (16x16x3), exported to ONNX."""
    if request.param == "vae":
        model = train_a_few_steps(zoo.VAE((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, seed=0), digits[0][:128])
    else:
        # Wide enough that export rewrites its strided transposed convolutions (Conv + DepthToSpace).
        model = zoo.DCGAN((16, 16, 3), 8, generator_filters=(32, 16), discriminator_filters=(4, 8), kernel_size=5, seed=0)
        images = np.random.default_rng(0).uniform(size=(64, 16, 16, 3)).astype("float32")
        train_a_few_steps(model, images, epochs=1)
    out = tmp_path_factory.mktemp(f"node-{request.param}")
    return to_onnx(model, out / f"{request.param}.onnx", dataset="test").path


@pytest.mark.parametrize("batch", [1, 7])
def test_onnxruntime_node_gives_pythons_images(onnx_file, batch):
    gen = OnnxGenerator(onnx_file)
    z = np.random.default_rng(batch).standard_normal((batch, gen.latent_dim)).astype("float32")
    got = json.loads(node(JS / "generate.cjs", {"model": str(onnx_file), "z": z.ravel().tolist(), "shape": list(z.shape)}))
    assert (got["inputs"], got["outputs"]) == (["z"], ["images"])
    assert got["dims"] == [batch, *gen.image_shape]
    images = np.asarray(got["data"], np.float32).reshape(got["dims"])
    expected = gen.generate(z)
    assert np.abs(images - expected).max() <= 1e-5
    # The comparison can fail: other latents give other images.
    assert np.abs(images - gen.generate(z + 1.0)).max() > 1e-3


def test_the_pages_latent_maths_in_node_equal_pythons():
    seeded = [[0, 3, 5], [1, 1, 7], [123456789, 9, 3], [2**32 - 1, 2, 64]]  # odd and even totals
    walks = [[1, 2, 8, 16, "spherical"], [5, 6, 3, 4, "linear"], [7, 7, 4, 5, "spherical"]]  # equal ends: a line
    fields = [["42", 0, 10**9], ["abc", 0, 5], ["-3", 1, 64], ["65", 1, 64], [" 7 ", 1, 64], ["1.5", 1, 64]]
    got = json.loads(node(JS / "latents.cjs", {"script": str(PAGE_SCRIPT), "seeded": seeded, "walks": walks,
                                              "fields": fields}))
    for (seed, n, d), values in zip(seeded, got["seeded"]):
        expected = seeded_latents(seed, n, d)
        np.testing.assert_array_equal(np.asarray(values, np.float32).reshape(n, d), expected)
    for (a, b, d, steps, method), values in zip(walks, got["walks"]):
        expected = interpolate_latents(seeded_latents(a, 1, d)[0], seeded_latents(b, 1, d)[0], steps, method)
        assert np.abs(np.asarray(values, np.float32).reshape(steps, d) - expected).max() <= 1e-6
    assert got["parsed"][0] == {"value": 42} and got["parsed"][4] == {"value": 7}
    errors = [p.get("error", "") for p in got["parsed"]]
    assert "whole number" in errors[1] and '"abc"' in errors[1]
    assert "at least 1" in errors[2] and "at most 64" in errors[3] and "whole number" in errors[5]


def readme_node_snippet():
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Node.js"):]
    return re.search(r"```js\n(.*?)```", section, re.S).group(1)


def test_the_readme_node_lines_run_as_written(digits, tmp_path):
    """The README's Node lines, with its run folder replaced by a real export (and the page written by write_web)."""
    model = train_a_few_steps(zoo.VAE((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, seed=0), digits[0][:64], epochs=1)
    run = tmp_path / "runs" / "digits-vae"
    onnx_path = to_onnx(model, run / "export" / "vae.onnx", dataset="digits").path
    write_web(onnx_path, run / "export" / "web")
    (tmp_path / "generate.cjs").write_text(readme_node_snippet())
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    printed = node(tmp_path / "generate.cjs", cwd=tmp_path, env=env)
    assert printed.strip() == "[ 16, 8, 8, 1 ]"
