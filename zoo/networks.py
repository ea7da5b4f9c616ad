"""Builders of the zoo's sub-networks, as functional `keras.Model`s.

Only `keras.layers` and `keras.ops` appear here, so every network runs on any
Keras backend. Every layer takes the model's dtype policy (`dtype`, None for
the global one), except the output layers, which compute in float32 whatever
the policy, so the losses stay in float32 under `mixed_bfloat16`. Each network
halves (or doubles) the resolution once per entry of `filters`, which is why
image sides must be divisible by 2**len(filters).
"""

import math

import keras
from keras import layers


def _dense_stack(x, hidden_dim, dtype):
    """The Dense ReLU layers of `hidden_dim` (an int, 0 for none, or a sequence of widths) on x.
    The first is named "hidden" (as when there was only one), the next "hidden1", "hidden2", ..."""
    widths = (hidden_dim,) if isinstance(hidden_dim, int) else tuple(hidden_dim)
    for i, width in enumerate(w for w in widths if w):
        x = layers.Dense(width, activation="relu", name="hidden" if i == 0 else f"hidden{i}", dtype=dtype)(x)
    return x


def _reversed_widths(hidden_dim):
    return hidden_dim if isinstance(hidden_dim, int) else tuple(hidden_dim)[::-1]


def _bottom_shape(image_shape, n_stages):
    height, width, _ = image_shape
    return height // 2**n_stages, width // 2**n_stages


def conv_encoder(image_shape, outputs, filters=(32, 64), hidden_dim=256, kernel_size=3, name="encoder", dtype=None):
    """Strided-convolution encoder: image -> one Dense head per entry of `outputs`.

    Args:
        image_shape: (H, W, C).
        outputs: dict of head name -> width, e.g. {"z": 16} or
            {"mean": 16, "log_var": 16}.
        filters: widths of the stride-2 convolutions, in order; () for none
            (an MLP encoder on the flattened image).
        hidden_dim: width of the Dense layer before the heads (0 for none),
            or a sequence of widths for several, e.g. (512, 512).
    """
    images = keras.Input(shape=image_shape, name="images")
    x = images
    for i, width in enumerate(filters):
        x = layers.Conv2D(width, kernel_size, strides=2, padding="same", activation="relu", name=f"conv{i}", dtype=dtype)(x)
    x = layers.Flatten(name="flatten", dtype=dtype)(x)
    x = _dense_stack(x, hidden_dim, dtype)
    heads = {head: layers.Dense(width, name=head, dtype="float32")(x) for head, width in outputs.items()}
    out = list(heads.values())
    return keras.Model(images, out[0] if len(out) == 1 else out, name=name, dtype=dtype)


def deconv_decoder(image_shape, latent_dim, filters=(64, 32), hidden_dim=256, kernel_size=3, name="decoder", dtype=None):
    """Mirror of `conv_encoder`: code -> per-pixel logits of shape image_shape.

    The last layer is linear; callers apply the output non-linearity (sigmoid
    for [0, 1] images) so losses can work on logits. `hidden_dim` as for
    `conv_encoder`, its widths in the encoder's order (the decoder runs them
    backwards). With `filters=()` the decoder is an MLP: its last Dense layer
    gives the logits of every pixel.
    """
    z = keras.Input(shape=(latent_dim,), name="z")
    x = _dense_stack(z, _reversed_widths(hidden_dim), dtype)
    if not filters:
        x = layers.Dense(math.prod(image_shape), name="logits", dtype="float32")(x)
        logits = layers.Reshape(tuple(image_shape), name="reshape", dtype="float32")(x)
        return keras.Model(z, logits, name=name, dtype=dtype)
    bottom_h, bottom_w = _bottom_shape(image_shape, len(filters))
    x = layers.Dense(bottom_h * bottom_w * filters[0], activation="relu", name="project", dtype=dtype)(x)
    x = layers.Reshape((bottom_h, bottom_w, filters[0]), name="reshape", dtype=dtype)(x)
    for i, width in enumerate(filters):
        x = layers.Conv2DTranspose(width, kernel_size, strides=2, padding="same", activation="relu", name=f"deconv{i}", dtype=dtype)(x)
    logits = layers.Conv2D(image_shape[-1], kernel_size, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(z, logits, name=name, dtype=dtype)


def dcgan_generator(image_shape, latent_dim, filters=(128, 64), kernel_size=5, name="generator", dtype=None,
                    synchronized=False):
    """DCGAN generator (Radford et al. 2016): project and reshape, then
    fractionally-strided convolutions with batch norm and ReLU, tanh output in [-1, 1].

    `filters` are the widths before each upsampling, widest first; the last
    upsampling produces the image channels directly (no batch norm there).
    `synchronized`: batch statistics over every replica of a tf.distribute
    strategy (TensorFlow backend only).
    """
    bottom_h, bottom_w = _bottom_shape(image_shape, len(filters))
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(bottom_h * bottom_w * filters[0], use_bias=False, name="project", dtype=dtype)(z)
    x = layers.BatchNormalization(name="project_bn", synchronized=synchronized, dtype=dtype)(x)
    x = layers.ReLU(name="project_relu", dtype=dtype)(x)
    x = layers.Reshape((bottom_h, bottom_w, filters[0]), name="reshape", dtype=dtype)(x)
    for i, width in enumerate(filters[1:]):
        x = layers.Conv2DTranspose(width, kernel_size, strides=2, padding="same", use_bias=False, name=f"deconv{i}", dtype=dtype)(x)
        x = layers.BatchNormalization(name=f"deconv{i}_bn", synchronized=synchronized, dtype=dtype)(x)
        x = layers.ReLU(name=f"deconv{i}_relu", dtype=dtype)(x)
    x = layers.Conv2DTranspose(image_shape[-1], kernel_size, strides=2, padding="same", name="to_image", dtype=dtype)(x)
    images = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model(z, images, name=name, dtype=dtype)


def dcgan_discriminator(image_shape, filters=(64, 128), kernel_size=5, name="discriminator", dtype=None,
                        synchronized=False):
    """DCGAN discriminator: strided convolutions with LeakyReLU(0.2), batch norm on
    all but the input layer (Radford et al. 2016), one real/fake logit out."""
    images = keras.Input(shape=image_shape, name="images")
    x = images
    for i, width in enumerate(filters):
        x = layers.Conv2D(width, kernel_size, strides=2, padding="same", use_bias=i == 0, name=f"conv{i}", dtype=dtype)(x)
        if i > 0:
            x = layers.BatchNormalization(name=f"conv{i}_bn", synchronized=synchronized, dtype=dtype)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"conv{i}_lrelu", dtype=dtype)(x)
    x = layers.Flatten(name="flatten", dtype=dtype)(x)
    logits = layers.Dense(1, name="logit", dtype="float32")(x)
    return keras.Model(images, logits, name=name, dtype=dtype)
