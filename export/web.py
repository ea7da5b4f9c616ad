"""An exported generator as a static web page that samples in the visitor's browser.

`zoo export RUN_DIR --web` (or `write_web`) writes `RUN_DIR/export/web/`:

    index.html          the page: a grid of samples, a latent walk with a slider
    genzoo-web.js       the page's script (reads the config below, runs onnxruntime-web)
    <model>.onnx        the fp32 ONNX generator, as `zoo export` wrote it
    <model>.json        its genzoo metadata (`export.metadata`), read by the page
    ort/                only with offline=True: onnxruntime-web's files, for a page
                        without internet access

The page runs the generator with onnxruntime-web (WebGPU when the browser has
an adapter, else WebAssembly), taken from jsDelivr at the pinned
`ORT_WEB_VERSION` unless `offline` copies a local copy next to it. It needs a
static file server (`python -m http.server -d RUN_DIR/export/web`), not file://
URLs, because browsers refuse fetch() and WebAssembly from files.

The page draws its latents from `seeded_latents`, implemented identically in
Python (here) and JavaScript (genzoo-web.js), so a seed typed into the page
gives the z, and therefore the images, that Python gives for that seed:

>>> from export.runtime import OnnxGenerator
>>> gen = OnnxGenerator("runs/digits-vae/export/web/vae.onnx")
>>> images = gen.generate(seeded_latents(seed=3, n=16, latent_dim=gen.latent_dim))  # the page's grid for seed 3

numpy and the standard library only; nothing of TensorFlow or Keras.
"""

import glob
import json
import os
import shutil
from importlib import resources

import numpy as np

from export import metadata as _metadata
from zoo_common import files as _files

# The npm version tests/js/package.json pins: the page and the tests use the same onnxruntime-web.
ORT_WEB_VERSION = "1.30.0"
ORT_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
# ort.min.js is the WebGPU + WebAssembly build; it loads the JSEP WebAssembly module beside it.
ORT_FILES = ("ort.min.js", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
ORT_DIR = "ort"
TEMPLATE_FILES = ("index.html", "genzoo-web.js")
CONFIG_MARKER = "<!--GENZOO_CONFIG-->"
# The page refuses more samples than this (a grid of 64 stays quick on a phone's CPU).
MAX_COUNT = 64
MAX_SEED = 2**32 - 1
WALK_STEPS = 16

# mulberry32 (Tommy Ettinger, public domain): 32-bit state advanced by a constant, then mixed.
_GOLDEN = 0x6D2B79F5


def uniform_words(seed, count):
    """The first `count` outputs of mulberry32 seeded with `seed`, as uint32.

    The state after k draws is seed + k * 0x6D2B79F5 (mod 2**32), so the
    k-th output is a pure function of k and numpy computes all of them at once.
    """
    seed = _check_seed(seed)
    with np.errstate(over="ignore"):
        a = (np.uint32(seed) + np.arange(1, count + 1, dtype=np.uint32) * np.uint32(_GOLDEN)).astype(np.uint32)
        t = (a ^ (a >> np.uint32(15))) * (a | np.uint32(1))
        t = (t + ((t ^ (t >> np.uint32(7))) * (t | np.uint32(61)))) ^ t
        return (t ^ (t >> np.uint32(14))).astype(np.uint32)


def seeded_latents(seed, n, latent_dim):
    """z ~ N(0, I) of shape (n, latent_dim), float32, exactly as the web page draws them for `seed`.

    Uniforms u = word / 2**32 from mulberry32 (`uniform_words`), taken in pairs
    (u1, u2) and turned into two normals by Box-Muller in float64:
    r = sqrt(-2 ln(1 - u1)), z = r cos(2 pi u2), r sin(2 pi u2); the normals
    fill z row by row; then float32. genzoo-web.js does the same arithmetic.

    Args:
        seed: int in [0, 2**32 - 1].
        n: int >= 1. Number of latents.
        latent_dim: int >= 1.
    """
    for name, value in (("n", n), ("latent_dim", latent_dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1.")
    total = int(n) * int(latent_dim)
    pairs = (total + 1) // 2
    u = uniform_words(seed, 2 * pairs).astype(np.float64) / 4294967296.0
    u1, u2 = u[0::2], u[1::2]
    radius = np.sqrt(-2.0 * np.log(1.0 - u1))
    angle = 2.0 * np.pi * u2
    normals = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).ravel()[:total]
    return normals.reshape(int(n), int(latent_dim)).astype(np.float32)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed={seed!r} must be an integer from 0 to {MAX_SEED}.")
    return int(seed)


def find_ort_dist(ort_dist=None):
    """The folder holding onnxruntime-web's `ORT_FILES`: `ort_dist` (the package folder or its
    dist/), else ./node_modules/onnxruntime-web/dist. ValueError naming what to do otherwise."""
    candidates = [ort_dist] if ort_dist is not None else [os.path.join("node_modules", "onnxruntime-web")]
    for base in candidates:
        for folder in (os.path.join(base, "dist"), base):
            if all(os.path.isfile(os.path.join(folder, f)) for f in ORT_FILES):
                return os.path.abspath(folder)
    where = ort_dist if ort_dist is not None else os.path.abspath(candidates[0])
    raise ValueError(
        f"offline needs onnxruntime-web's files ({', '.join(ORT_FILES)}) and {where} has none; run "
        f"`npm install onnxruntime-web@{ORT_WEB_VERSION}` here or give its folder (--ort-dist DIR)."
    )


def ort_dist_version(folder):
    """The version in the package.json above an onnxruntime-web dist/ folder, or None."""
    manifest = os.path.join(os.path.dirname(os.path.abspath(folder)), "package.json")
    try:
        with open(manifest) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def check_prior(metadata, where):
    """ValueError unless the generator has a prior to sample from (a page of AE samples shows noise)."""
    if metadata.get("latent_prior") != "standard_normal":
        raise ValueError(
            f"{where} is a plain autoencoder ({metadata.get('model')}): its decoder was never trained on "
            "N(0, I) codes, so a page of samples would show noise; make the page from a vae or dcgan run "
            "(zoo train vae --out RUN_DIR, then zoo export RUN_DIR --web)."
        )


def written_by_genzoo(path):
    """Whether `path` is a web folder this module wrote (it has the page's script and a marked index.html)."""
    index = os.path.join(path, "index.html")
    if not (os.path.isdir(path) and os.path.isfile(os.path.join(path, "genzoo-web.js")) and os.path.isfile(index)):
        return False
    with open(index, encoding="utf-8", errors="replace") as f:
        return 'id="genzoo-config"' in f.read()


def _template(name):
    return resources.files("export").joinpath("web_template", name).read_text(encoding="utf-8")


def page_config(model_file, metadata_file, ort_base):
    """The JSON object index.html carries for genzoo-web.js."""
    return {
        "model": model_file,
        "metadata": metadata_file,
        "ort_base": ort_base,
        "ort_script": ort_base + ORT_FILES[0],
        "ort_version": ORT_WEB_VERSION,
        "max_count": MAX_COUNT,
        "max_seed": MAX_SEED,
        "walk_steps": WALK_STEPS,
    }


def render_index(config):
    """index.html with the page config in its JSON script element."""
    # "</" cannot end the script element early inside JSON text.
    text = json.dumps(config, indent=2, sort_keys=True).replace("</", "<\\/")
    return _template("index.html").replace(CONFIG_MARKER, text)


def write_web(onnx_path, out_dir, *, offline=False, ort_dist=None, overwrite=False):
    """Write the static web page of the ONNX generator at `onnx_path` into `out_dir`.

    The folder is built under a temporary name beside `out_dir` and renamed
    into place, so a failure leaves nothing; an existing `out_dir` is replaced
    only with `overwrite` and only if this function wrote it.

    Args:
        onnx_path: str. An fp32 .onnx file written by `zoo export` (with a prior: VAE or DCGAN).
        out_dir: str. The folder to create.
        offline: bool. Copy onnxruntime-web's files into `out_dir/ort/` instead of
            loading them from jsDelivr. Defaults to False.
        ort_dist: str or None. onnxruntime-web's package or dist/ folder, for
            `offline`. Defaults to None: ./node_modules/onnxruntime-web.
        overwrite: bool. Replace an existing page folder. Defaults to False.

    Returns:
        dict: `path` (out_dir), `files` (names written), `metadata`, `ort` (where the page loads it from).

    Example:
    >>> write_web("runs/digits-vae/export/vae.onnx", "runs/digits-vae/export/web")["ort"]
    'https://cdn.jsdelivr.net/npm/onnxruntime-web@1.30.0/dist/'
    """
    onnx_path, out_dir = os.fspath(onnx_path), os.fspath(out_dir)
    meta = _metadata.read_metadata(onnx_path)
    if meta.get("format") != "onnx" or meta.get("precision", "fp32") != "fp32":
        raise ValueError(
            f"{onnx_path}: the web page takes the fp32 ONNX file (got {meta.get('format')}, "
            f"{meta.get('precision')}); export one with zoo export RUN_DIR --format onnx."
        )
    check_prior(meta, onnx_path)
    dist = find_ort_dist(ort_dist) if offline else None
    _files.refuse_existing(out_dir, overwrite, flag="--overwrite (overwrite=True)", ours=written_by_genzoo)

    model_file = os.path.basename(onnx_path)
    metadata_file = os.path.splitext(model_file)[0] + ".json"
    ort_base = f"{ORT_DIR}/" if offline else ORT_CDN
    tmp = _files.temp_dir_beside(out_dir)
    try:
        with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
            f.write(render_index(page_config(model_file, metadata_file, ort_base)))
        with open(os.path.join(tmp, "genzoo-web.js"), "w", encoding="utf-8") as f:
            f.write(_template("genzoo-web.js"))
        shutil.copyfile(onnx_path, os.path.join(tmp, model_file))
        with open(os.path.join(tmp, metadata_file), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        if dist is not None:
            os.makedirs(os.path.join(tmp, ORT_DIR))
            for name in ORT_FILES:
                shutil.copyfile(os.path.join(dist, name), os.path.join(tmp, ORT_DIR, name))
        _files.move_into_place(tmp, out_dir)
    except BaseException:
        _files.remove(tmp)
        raise
    written = sorted(os.path.relpath(p, out_dir) for p in glob.glob(os.path.join(out_dir, "**"), recursive=True)
                     if os.path.isfile(p))
    return {"path": out_dir, "files": written, "metadata": meta, "ort": ort_base}


def web_dir(run_dir):
    """Where `zoo export RUN_DIR --web` writes the page."""
    from zoo_common import layout

    return os.path.join(layout.path(os.fspath(run_dir), layout.EXPORT), "web")


def export_run_web(run_dir, formats="savedmodel,onnx", opset=None, overwrite=False, offline=False, ort_dist=None):
    """`zoo export RUN_DIR --web`: `export.runs.export_run`, then the page from its fp32 ONNX file.

    Everything the page needs is checked before anything is written: the run
    has a prior (not a plain AE), the ONNX format is asked for, the
    onnxruntime-web files exist (offline) and no page folder is in the way.
    Returns (export results, `write_web`'s dict).
    """
    from export.runs import export_run, load_run, parse_formats
    from export.source import GenerativeHalf

    if "onnx" not in parse_formats(formats):
        raise ValueError("--web needs the ONNX file; keep onnx in --format (e.g. --format onnx).")
    model, _ = load_run(run_dir)
    half = GenerativeHalf.of(model)
    check_prior({"model": half.kind, "latent_prior": "standard_normal" if model.has_prior else "none",
                 "num_classes": model.num_classes}, os.fspath(run_dir))
    if offline:
        find_ort_dist(ort_dist)
    out = web_dir(run_dir)
    _files.refuse_existing(out, overwrite, flag="--overwrite", ours=written_by_genzoo)
    results = export_run(run_dir, formats=formats, opset=opset, overwrite=overwrite)
    onnx_result = next(r for r in results if r.format == "onnx")
    return results, write_web(onnx_result.path, out, offline=offline, ort_dist=ort_dist, overwrite=overwrite)
