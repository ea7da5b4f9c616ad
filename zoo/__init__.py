"""genzoo: autoencoders, VAEs and DCGANs as Keras 3 models that train with `fit`
on any Keras backend (TensorFlow, JAX, PyTorch).

`import zoo` loads Keras (choose its backend first, as for Keras itself:
`KERAS_BACKEND=jax`) and registers the models, so `keras.saving.load_model`
reads their `.keras` files; the data, evaluation and export helpers
(tensorflow-datasets, scikit-learn, onnx) load when first used.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import losses  # noqa: E402
from zoo.ae import Autoencoder  # noqa: E402
from zoo.base import GenerativeModel  # noqa: E402
from zoo.dcgan import DCGAN  # noqa: E402
from zoo.layers import Sampling  # noqa: E402
from zoo.registry import classes as _classes  # noqa: E402
from zoo.vae import VAE  # noqa: E402
from zoo.wgan import WGANGP  # noqa: E402

__version__ = "0.1.0"

# CLI names -> classes (the registry, zoo.registry, holds their run defaults).
MODELS = _classes()

_LAZY_SUBMODULES = ("data", "callbacks", "evaluate", "samplers", "latent", "training", "registry", "inversion", "density")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"zoo.{name}")
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = ["Autoencoder", "VAE", "DCGAN", "WGANGP", "GenerativeModel", "Sampling", "losses", "MODELS", "__version__"]
