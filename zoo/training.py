"""The training run behind `zoo train`: build a model, fit it, write the run directory.

A run directory holds `model.keras` (the trained model), `config.json` (every
setting and the library versions), `history.json` (the per-epoch losses) and
`samples.png` (a grid of generated images). Every file is written atomically.
"""

import os
import platform
import time

import keras

import zoo
from zoo import _io

DEFAULT_LATENT_DIM = {"ae": 16, "dae": 64, "vae": 16, "dcgan": 100}


def build_model(model_name, image_shape, latent_dim=None, seed=None, **options):
    """The model the CLI name stands for, with CLI-friendly defaults.

    `dae` is the denoising autoencoder: an `Autoencoder` with input noise
    (default stddev 0.3) and, by default, a code larger than an 8x8 image.
    """
    if model_name not in zoo.MODELS:
        allowed = ", ".join(repr(m) for m in zoo.MODELS)
        raise ValueError(f"model={model_name!r} is not known; allowed values are {allowed}.")
    latent_dim = latent_dim or DEFAULT_LATENT_DIM[model_name]
    kwargs = {k: v for k, v in options.items() if v is not None}
    if model_name == "dae":
        kwargs.setdefault("noise_stddev", 0.3)
    return zoo.MODELS[model_name](image_shape, latent_dim, seed=seed, **kwargs)


def compile_model(model, learning_rate=None):
    if isinstance(model, zoo.DCGAN):
        lr = learning_rate or 2e-4
        model.compile(
            d_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
        )
    else:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate or 1e-3))
    return model


def generate_images(model, n, seed=0):
    """n images from the model's generative half (AE: decode N(0, I) codes)."""
    if isinstance(model, zoo.Autoencoder):
        # A plain AE has no prior; N(0, I) codes only show what its decoder does.
        z = keras.random.normal((n, model.latent_dim), seed=seed)
        return model.decode(z)
    return model.sample(n, seed=seed)


def library_versions():
    import numpy as np
    import tensorflow as tf

    return {
        "genzoo": zoo.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def train(model_name, dataset="digits", epochs=10, out="runs/run", batch_size=128, latent_dim=None,
          learning_rate=None, seed=0, overwrite=False, verbose=1, **model_options):
    """Train `model_name` on `dataset` and write the run directory `out`. Returns the model."""
    from export.grid import save_grid
    from zoo import data

    model_path = os.path.join(out, "model.keras")
    if os.path.exists(model_path) and not overwrite:
        raise ValueError(f"{out} already holds a trained model; choose another --out or pass --overwrite.")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    train_ds = data.load(dataset, split="train", batch_size=batch_size, seed=seed)
    image_shape = tuple(train_ds.element_spec[0].shape[1:])
    model = compile_model(build_model(model_name, image_shape, latent_dim, seed=seed, **model_options), learning_rate)

    config = {
        "model": model_name,
        "model_config": model.get_config(),
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "versions": library_versions(),
    }
    _io.write_json(config, os.path.join(out, "config.json"))
    started = time.time()
    history = model.fit(train_ds, epochs=epochs, verbose=verbose, shuffle=False)  # the pipeline shuffles
    _io.save_model(model, model_path)
    _io.write_json({"history": history.history, "seconds": time.time() - started}, os.path.join(out, "history.json"))
    save_grid(keras.ops.convert_to_numpy(generate_images(model, 64, seed=0)), os.path.join(out, "samples.png"), ncols=8)
    return model
