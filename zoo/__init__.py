"""genzoo: autoencoders, VAEs and DCGANs as Keras 3 models that train with `fit`.

`import zoo` loads Keras and its backend only; the data, evaluation and export
helpers (tensorflow-datasets, scikit-learn, onnx) load when first used.
"""

import importlib
import os

# The models train with tf.GradientTape; inference works on any backend, so an
# explicit KERAS_BACKEND (e.g. jax for serving) is respected.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import losses  # noqa: E402
from zoo.ae import Autoencoder  # noqa: E402
from zoo.dcgan import DCGAN  # noqa: E402
from zoo.layers import Sampling  # noqa: E402
from zoo.vae import VAE  # noqa: E402

__version__ = "0.1.0"

# CLI names -> classes.
MODELS = {"ae": Autoencoder, "dae": Autoencoder, "vae": VAE, "dcgan": DCGAN}

_LAZY_SUBMODULES = ("data", "callbacks", "evaluate", "samplers", "latent", "cli")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"zoo.{name}")
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = ["Autoencoder", "VAE", "DCGAN", "Sampling", "losses", "MODELS", "__version__"]
