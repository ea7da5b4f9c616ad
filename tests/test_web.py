"""`zoo export RUN_DIR --web`: the folder it writes, and the page run for real in Debian's
Chromium (headless, Selenium) from a static server on 127.0.0.1, its images compared with
Python's OnnxGenerator on the same latents.

The browser tests need /usr/bin/chromium, /usr/bin/chromedriver and tests/js/node_modules
(see tests/web_helpers.INSTALL) and skip, saying so, without them; .ci/run installs them.
"""

import json
import os
import pathlib
import re
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image

import zoo
from export import read_metadata, to_onnx
from export import web
from export.runtime import OnnxGenerator
from tests import web_helpers
from zoo_cli.main import main as zoo_main

REPO = pathlib.Path(__file__).resolve().parents[1]
needs_browser = pytest.mark.skipif(web_helpers.missing() is not None, reason=str(web_helpers.missing()))


def save_run(model, out, dataset="digits"):
    """A run directory as `zoo train` leaves it, for what export reads (model.keras, config.json)."""
    out.mkdir(parents=True)
    model.save(out / "model.keras")
    (out / "config.json").write_text(json.dumps({"dataset": dataset}))
    return out


@pytest.fixture(scope="module")
def vae_run(digits, tmp_path_factory):
    """A VAE trained a few epochs on the digits, so its samples are not flat grey."""
    model = zoo.VAE((8, 8, 1), 4, filters=(8, 16), hidden_dim=32, seed=0)
    model.compile_default()
    model.fit(digits[0], epochs=8, batch_size=32, verbose=0)
    return save_run(model, tmp_path_factory.mktemp("web") / "vae-run")


@pytest.fixture(scope="module")
def ae_run(digits, tmp_path_factory):
    model = zoo.Autoencoder((8, 8, 1), 4, filters=(4, 8), hidden_dim=16, seed=0)
    model.compile_default()
    model.fit(digits[0][:64], epochs=1, batch_size=16, verbose=0)
    return save_run(model, tmp_path_factory.mktemp("web") / "ae-run")


def one_line_error(capsys, *argv):
    assert zoo_main([str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# -- the latents a seed gives, in Python ---------------------------------------


def mulberry32(seed, count):
    """The generator as published (one 32-bit state, one draw at a time), in plain Python integers."""
    mask, a, out = 0xFFFFFFFF, seed, []
    for _ in range(count):
        a = (a + 0x6D2B79F5) & mask
        t = ((a ^ (a >> 15)) * (a | 1)) & mask
        t = ((t + (((t ^ (t >> 7)) * (t | 61)) & mask)) & mask) ^ t
        out.append((t ^ (t >> 14)) & mask)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2024, 2**31, 2**32 - 1])
def test_the_seeded_words_are_mulberry32(seed):
    assert web.uniform_words(seed, 300).tolist() == mulberry32(seed, 300)


def test_seeded_latents_are_standard_normal_and_reproducible():
    z = web.seeded_latents(7, 2000, 50)
    assert z.shape == (2000, 50) and z.dtype == np.float32
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(z**4) - 3.0) < 0.1  # Gaussian kurtosis, not a uniform's 1.8
    np.testing.assert_array_equal(web.seeded_latents(7, 3, 5), web.seeded_latents(7, 3, 5))
    assert not np.array_equal(web.seeded_latents(7, 3, 5), web.seeded_latents(8, 3, 5))
    # n latents of one seed are the first n of a longer draw: the page's count does not change earlier ones.
    np.testing.assert_array_equal(web.seeded_latents(7, 16, 5)[:3], web.seeded_latents(7, 3, 5))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", True])
def test_a_seed_outside_the_page_range_is_refused(seed):
    with pytest.raises(ValueError, match="seed=.* must be an integer from 0 to 4294967295"):
        web.seeded_latents(seed, 1, 4)


# -- the folder ----------------------------------------------------------------


@pytest.fixture(scope="module")
def vae_onnx(vae_run, tmp_path_factory):
    import keras

    model = keras.saving.load_model(vae_run / "model.keras")
    return to_onnx(model, tmp_path_factory.mktemp("onnx") / "vae.onnx", dataset="digits").path


def test_the_folder_loads_onnxruntime_web_from_the_pinned_cdn_by_default(vae_onnx, tmp_path):
    result = web.write_web(vae_onnx, tmp_path / "web")
    assert result["files"] == ["genzoo-web.js", "index.html", "vae.json", "vae.onnx"]
    assert json.loads((tmp_path / "web" / "vae.json").read_text()) == read_metadata(vae_onnx)
    assert (tmp_path / "web" / "vae.onnx").read_bytes() == pathlib.Path(vae_onnx).read_bytes()
    html = (tmp_path / "web" / "index.html").read_text()
    config = json.loads(re.search(r'id="genzoo-config" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert config["ort_script"] == f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{web.ORT_WEB_VERSION}/dist/ort.min.js"
    assert (config["model"], config["metadata"], config["max_count"]) == ("vae.onnx", "vae.json", 64)
    # The pinned CDN version is the npm version the tests run.
    package = json.loads((REPO / "tests" / "js" / "package.json").read_text())
    lock = json.loads((REPO / "tests" / "js" / "package-lock.json").read_text())
    assert package["devDependencies"]["onnxruntime-web"] == web.ORT_WEB_VERSION
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == web.ORT_WEB_VERSION


def test_offline_without_onnxruntime_web_says_what_to_do_and_writes_nothing(vae_onnx, tmp_path):
    with pytest.raises(ValueError, match=f"npm install onnxruntime-web@{web.ORT_WEB_VERSION}.*--ort-dist"):
        web.write_web(vae_onnx, tmp_path / "web", offline=True, ort_dist=tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_folder_is_replaced_only_with_overwrite_and_only_if_ours(vae_onnx, tmp_path):
    web.write_web(vae_onnx, tmp_path / "web")
    with pytest.raises(FileExistsError, match="already exists"):
        web.write_web(vae_onnx, tmp_path / "web")
    web.write_web(vae_onnx, tmp_path / "web", overwrite=True)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<p>someone's page</p>")
    with pytest.raises(FileExistsError, match="not written by genzoo"):
        web.write_web(vae_onnx, tmp_path / "site", overwrite=True)
    assert (tmp_path / "site" / "index.html").read_text() == "<p>someone's page</p>"


# -- zoo export --web ------------------------------------------------------------


def test_web_on_an_ae_run_says_what_to_do_in_one_line_and_writes_nothing(ae_run, capsys):
    line = one_line_error(capsys, "export", ae_run, "--web")
    assert line.startswith("zoo export: error: ") and "plain autoencoder (ae)" in line
    assert "zoo train vae" in line and "zoo export RUN_DIR --web" in line
    assert not (ae_run / "export").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--web", "--fp16"], "--web takes the fp32 ONNX file"),
        (["--offline"], "add --web"),
        (["--web", "--format", "savedmodel"], "keep onnx in --format"),
        (["--web", "--offline", "--ort-dist", "/nonexistent"], "npm install onnxruntime-web@"),
    ],
)
def test_bad_web_options_are_one_line_errors(vae_run, tmp_path, capsys, args, message):
    run = shutil.copytree(vae_run, tmp_path / "run")
    assert message in one_line_error(capsys, "export", run, *args)
    assert not (run / "export").exists()


def test_zoo_export_web_writes_the_page_next_to_the_exports(vae_run, tmp_path, capsys):
    run = shutil.copytree(vae_run, tmp_path / "run")
    assert zoo_main(["export", str(run), "--web", "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {run / 'export' / 'web'} (web page, 4 files" in printed and "python -m http.server -d" in printed
    assert sorted(os.listdir(run / "export" / "web")) == ["genzoo-web.js", "index.html", "vae.json", "vae.onnx"]
    assert (run / "export" / "web" / "vae.onnx").read_bytes() == (run / "export" / "vae.onnx").read_bytes()
    assert "already exists" in one_line_error(capsys, "export", run, "--web", "--format", "onnx")


# -- the page in Chromium -----------------------------------------------------------


def foreign_onnx(path):
    """A valid ONNX model that is not a genzoo generator: y = x + x."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "add", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


@pytest.fixture(scope="module")
def dcgan_onnx(tmp_path_factory):
    """An RGB DCGAN generator wide enough that export rewrites its strided transposed convolutions."""
    model = zoo.DCGAN((16, 16, 3), 8, generator_filters=(32, 16), discriminator_filters=(4, 8), kernel_size=5, seed=0)
    model.compile_default()
    model.fit(np.random.default_rng(0).uniform(size=(64, 16, 16, 3)).astype("float32"), epochs=1, batch_size=16, verbose=0)
    return to_onnx(model, tmp_path_factory.mktemp("onnx") / "dcgan.onnx", dataset="noise").path


@pytest.fixture(scope="module")
def site(vae_run, dcgan_onnx, tmp_path_factory):
    """A served folder: good/ (zoo export --web --offline), broken copies of it, and dcgan/ (RGB)."""
    root = tmp_path_factory.mktemp("site")
    web.write_web(dcgan_onnx, root / "dcgan", offline=True, ort_dist=web_helpers.ORT_WEB)
    run = shutil.copytree(vae_run, root / "run")
    assert zoo_main(["export", str(run), "--web", "--offline", "--ort-dist", str(web_helpers.ORT_WEB),
                     "--format", "onnx"]) == 0
    good = shutil.copytree(run / "export" / "web", root / "good")
    for name in ("missing", "corrupt", "foreign", "nometa", "otherdim"):
        folder = root / name
        folder.mkdir()
        for item in good.iterdir():
            if item.name == "ort":
                (folder / "ort").symlink_to(item)  # 28 MB: one copy served under every name
            else:
                shutil.copy(item, folder / item.name)
    (root / "missing" / "vae.onnx").unlink()
    (root / "corrupt" / "vae.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    foreign_onnx(root / "foreign" / "vae.onnx")
    (root / "nometa" / "vae.json").write_text('{"model": "vae"}')
    meta = json.loads((good / "vae.json").read_text())
    (root / "otherdim" / "vae.json").write_text(json.dumps({**meta, "latent_dim": meta["latent_dim"] + 1}))
    with web_helpers.static_server(root) as url:
        yield {"url": url, "onnx": good / "vae.onnx", "dcgan": root / "dcgan" / "dcgan.onnx"}


@pytest.fixture(scope="module")
def browser():
    driver = web_helpers.chromium()
    yield driver
    driver.quit()


@pytest.fixture
def page(site, browser):
    state = web_helpers.open_page(browser, site["url"] + "good/index.html")
    assert state == "ready", browser.execute_script("return window.genzoo.error")
    return browser


@pytest.fixture(scope="module")
def generator(site):
    return OnnxGenerator(site["onnx"])


def grid(driver):
    return driver.execute_script("return window.genzoo.grid")


def images_of(values, n, gen):
    return np.asarray(values, np.float32).reshape(n, *gen.image_shape)


def check_grid_is_pythons(state, gen):
    z = web.seeded_latents(state["seed"], state["count"], gen.latent_dim)
    np.testing.assert_array_equal(np.asarray(state["z"], np.float32).reshape(z.shape), z)
    images = images_of(state["images"], state["count"], gen)
    assert np.abs(images - gen.generate(z)).max() <= 1e-4
    return images


def type_into(driver, field, text):
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, field)
    element.clear()
    element.send_keys(text)


def click(driver, button):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, button).click()
    web_helpers.settle(driver)


@needs_browser
def test_the_grid_is_pythons_images_for_the_seed(page, generator):
    state = grid(page)
    assert (state["seed"], state["count"], state["dims"]) == (0, 16, [16, 8, 8, 1])
    images = check_grid_is_pythons(state, generator)
    assert images.std() > 0.05  # real digits-like samples, not a constant
    assert page.execute_script("return window.genzoo.backend") in ("wasm", "webgpu")


@needs_browser
def test_an_rgb_dcgan_page_is_pythons_images(site, browser):
    assert web_helpers.open_page(browser, site["url"] + "dcgan/index.html") == "ready"
    state = grid(browser)
    assert state["dims"] == [16, 16, 16, 3]
    check_grid_is_pythons(state, OnnxGenerator(site["dcgan"]))
    walk = browser.execute_script("return window.genzoo.walk")
    assert walk["method"] == "spherical"


@needs_browser
def test_a_typed_seed_and_new_samples_redraw_pythons_images(page, generator):
    type_into(page, "seed", "123456")
    type_into(page, "count", "5")
    click(page, "draw")
    state = grid(page)
    assert (state["seed"], state["count"]) == (123456, 5)
    check_grid_is_pythons(state, generator)
    click(page, "new-samples")
    fresh = grid(page)
    assert fresh["seed"] != 123456 and fresh["count"] == 5
    assert page.execute_script("return document.getElementById('seed').value") == str(fresh["seed"])
    check_grid_is_pythons(fresh, generator)


@needs_browser
@pytest.mark.parametrize(
    "field, text, message",
    [
        ("seed", "abc", 'seed must be a whole number from 0 to 4294967295; got "abc".'),
        ("seed", "4294967296", "seed must be at most 4294967295 on this page; got 4294967296."),
        ("count", "-3", "count must be at least 1; got -3."),
        ("count", "65", "count must be at most 64 on this page; got 65."),
        ("count", "2.5", 'count must be a whole number from 1 to 64; got "2.5".'),
    ],
)
def test_bad_seed_and_count_are_refused_in_the_page(page, field, text, message):
    from selenium.webdriver.common.by import By

    before = grid(page)
    type_into(page, field, text)
    click(page, "draw")
    assert page.find_element(By.ID, "samples-refused").text == message
    assert grid(page) == before  # nothing redrawn
    assert page.execute_script("return window.genzoo.state") == "ready"


@needs_browser
def test_the_walk_is_pythons_slerp_and_the_slider_moves_through_it(page, generator):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    walk = page.execute_script("return window.genzoo.walk")
    assert (walk["seeds"], walk["steps"], walk["method"]) == ([1, 2], 16, "spherical")
    z0, z1 = web.seeded_latents(1, 1, generator.latent_dim), web.seeded_latents(2, 1, generator.latent_dim)
    frames = images_of(walk["frames"], 16, generator)
    assert np.abs(frames - generator.interpolate(z0, z1, steps=16, method="slerp")).max() <= 1e-4
    assert np.abs(frames - generator.interpolate(z0, z1, steps=16, method="linear")).max() > 1e-4

    canvas = "return document.getElementById('walk-frame').toDataURL()"
    drawn = [page.execute_script(canvas)]
    slider = page.find_element(By.ID, "walk-slider")
    for position in (3, 15):
        slider.send_keys(*[Keys.ARROW_RIGHT] * (position - page.execute_script("return window.genzoo.walk.position")))
        walk = page.execute_script("return window.genzoo.walk")
        assert walk["position"] == position
        assert np.abs(images_of(walk["frame"], 1, generator)[0] - frames[position]).max() == 0
        drawn.append(page.execute_script(canvas))
    assert len(set(drawn)) == 3  # the frame on screen changed with the slider
    assert np.abs(frames[3] - frames[0]).max() > 1e-3 and np.abs(frames[15] - frames[3]).max() > 1e-3


@needs_browser
def test_the_screenshot_shows_pythons_images(page, generator, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "page.png"
    assert page.save_screenshot(str(path))
    shot = np.asarray(Image.open(path).convert("L"), np.int16)
    assert shot.std() > 20 and len(np.unique(shot)) > 30  # not blank
    # The grid's tiles on screen are Python's images, pixel for pixel (8x8 digits drawn at 8x, 4 px apart).
    rect = page.find_element(By.ID, "grid").rect
    expected = OnnxGenerator.to_uint8(generator.generate(web.seeded_latents(0, 16, generator.latent_dim)))
    scale, gap = 8, 4
    for k in range(16):
        x0 = int(rect["x"]) + (k % 4) * (8 * scale + gap)
        y0 = int(rect["y"]) + (k // 4) * (8 * scale + gap)
        centres = shot[y0 + scale // 2 : y0 + 8 * scale : scale, x0 + scale // 2 : x0 + 8 * scale : scale]
        assert np.abs(centres - expected[k, :, :, 0]).max() <= 1, k


@needs_browser
@pytest.mark.parametrize(
    "folder, words",
    [
        ("missing", ["generator model vae.onnx could not be loaded (HTTP 404"]),
        ("corrupt", ["vae.onnx is not an ONNX model onnxruntime-web can load"]),
        ("foreign", ['vae.onnx is not a genzoo generator: it takes ["x"] and gives ["y"]']),
        ("nometa", ['vae.json is not the metadata of a genzoo generator: it lacks "schema_version"']),
        ("otherdim", ["vae.onnx is not the generator vae.json describes: it fails on z of shape [1, 5]"]),
    ],
)
def test_a_broken_model_folder_gives_a_message_in_the_page(site, browser, folder, words):
    from selenium.webdriver.common.by import By

    assert web_helpers.open_page(browser, site["url"] + f"{folder}/index.html") == "error"
    shown = browser.find_element(By.ID, "error")
    assert shown.is_displayed()
    for word in words:
        assert word in shown.text
    assert not browser.find_element(By.ID, "samples").is_displayed()


@needs_browser
def test_a_conditional_page_draws_the_class_asked_for(browser, tmp_path):
    """A conditional VAE's page: a class field; "all" draws every class in turn, a number that
    class, each as Python's OnnxGenerator does with the same labels; a class outside is refused."""
    from zoo.data import digits_arrays

    x, y = digits_arrays("train")[:2]
    model = zoo.VAE((8, 8, 1), 4, filters=(8, 16), hidden_dim=32, num_classes=10, seed=0)
    model.compile_default()
    model.fit(x[:256], y[:256], batch_size=32, epochs=1, verbose=0)
    onnx_path = to_onnx(model, tmp_path / "cvae.onnx", dataset="digits").path
    web.write_web(onnx_path, tmp_path / "site" / "cvae", offline=True, ort_dist=web_helpers.ORT_WEB)
    gen = OnnxGenerator(onnx_path)
    with web_helpers.static_server(tmp_path / "site") as url:
        assert web_helpers.open_page(browser, url + "cvae/index.html") == "ready", \
            browser.execute_script("return window.genzoo.error")
        state = grid(browser)
        assert state["labels"] == [i % 10 for i in range(16)]
        z = web.seeded_latents(state["seed"], state["count"], gen.latent_dim)
        assert np.abs(images_of(state["images"], 16, gen) - gen.generate(z, labels=np.arange(16) % 10)).max() <= 1e-4
        type_into(browser, "class", "7")
        click(browser, "draw")
        state = grid(browser)
        assert state["labels"] == [7] * 16
        assert np.abs(images_of(state["images"], 16, gen) - gen.generate(z, labels=7)).max() <= 1e-4
        type_into(browser, "class", "10")
        click(browser, "draw")
        assert browser.execute_script("return window.genzoo.refused") == ["class must be at most 9 on this page; got 10."]
