"""The one table from CLI model names to classes and their run defaults.

Adding a model family: its own file, its tests, and one entry here.
"""

import dataclasses

from zoo.ae import Autoencoder
from zoo.dcgan import DCGAN
from zoo.vae import VAE
from zoo.wgan import WGANGP


@dataclasses.dataclass(frozen=True)
class Entry:
    cls: type
    latent_dim: int  # the CLI's default code width
    defaults: dict = dataclasses.field(default_factory=dict)  # constructor defaults the CLI name implies
    summary: str = ""


MODELS = {
    "ae": Entry(Autoencoder, 16, summary="autoencoder: an embedding smaller than the image"),
    # The denoising AE: input noise, and a code larger than an 8x8 image.
    "dae": Entry(Autoencoder, 64, {"noise_stddev": 0.3}, "denoising autoencoder: a larger code, noisy inputs"),
    "vae": Entry(VAE, 16, summary="variational autoencoder: density estimation and sampling"),
    "dcgan": Entry(DCGAN, 100, summary="deep convolutional GAN: implicit sampling"),
    "wgan-gp": Entry(WGANGP, 100, summary="Wasserstein GAN with gradient penalty: the mode-collapse remedy"),
}


def entry(name):
    if name not in MODELS:
        allowed = ", ".join(repr(m) for m in MODELS)
        raise ValueError(f"model={name!r} is not known; allowed values are {allowed}.")
    return MODELS[name]


def build(name, image_shape, latent_dim=None, seed=None, dtype=None, **options):
    """The model a CLI name stands for, with its defaults; None options take the model's own."""
    import inspect

    spec = entry(name)
    kwargs = {**spec.defaults, **{k: v for k, v in options.items() if v is not None}}
    takes = inspect.signature(spec.cls.__init__).parameters
    unknown = sorted(k for k in kwargs if k not in takes)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ValueError(f"{name} has no option {', '.join(unknown)} ({flags}); drop it.")
    return spec.cls(image_shape, spec.latent_dim if latent_dim is None else latent_dim, seed=seed, dtype=dtype, **kwargs)


def classes():
    return {name: spec.cls for name, spec in MODELS.items()}


__all__ = ["Entry", "MODELS", "build", "entry", "classes"]
