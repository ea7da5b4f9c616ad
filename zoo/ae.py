"""The autoencoder and the denoising autoencoder."""

import keras
from keras import ops

from zoo import _checks, losses, networks
from zoo.base import SingleOptimizerModel

RECONSTRUCTION_LOSSES = ("bce", "mse")


@keras.saving.register_keras_serializable(package="genzoo")
class Autoencoder(SingleOptimizerModel):
    """Convolutional autoencoder: image -> code z -> reconstructed image.

    With a code smaller than the image it learns an embedding (a non-linear
    PCA). With `noise_stddev > 0` it is a denoising autoencoder (Vincent et
    al. 2008): Gaussian noise corrupts the input during training only, and the
    target stays the clean image, so even a code larger than the input cannot
    just copy it.

    Args:
        image_shape: tuple (H, W, C). H and W divisible by 2**len(filters),
            C in {1, 3}.
        latent_dim: int. Width of the code.
        noise_stddev: float. Standard deviation of the training-time input
            noise, on the [0, 1] pixel scale. Defaults to 0.0 (plain AE).
        loss: str. `"bce"`: per-pixel binary cross-entropy on logits, summed
            per image (sharp results on near-binary images); `"mse"`: squared
            error summed per image. Defaults to `"bce"`.
        filters: tuple of int. Encoder conv widths (decoder mirrors them);
            () for none (an MLP).
            Defaults to (32, 64).
        hidden_dim: int or tuple of int. Dense layer before/after the code,
            0 for none; a tuple for several.
            Defaults to 256.
        seed: int or None. Seed of the noise. Defaults to None.
        dtype: the Keras dtype policy, e.g. "mixed_bfloat16"; saved in the
            config. Defaults to None (the global policy).

    Tracked: `loss` (the objective), `mse` (mean squared error per pixel,
    comparable with PCA's reconstruction error). Trains on every Keras
    backend (the loss is in `compute_loss`).

    Example:
    >>> ae = Autoencoder((28, 28, 1), latent_dim=16)
    >>> ae.compile(optimizer="adam")
    >>> ae.fit(images, epochs=5)  # images: float32 in [0, 1], NHWC
    >>> codes = ae.encode(images[:8]); recon = ae.decode(codes)
    """

    def __init__(
        self,
        image_shape,
        latent_dim,
        noise_stddev=0.0,
        loss="bce",
        filters=(32, 64),
        hidden_dim=256,
        seed=None,
        **kwargs,
    ):
        filters = _checks.filters("filters", filters, allow_empty=True)
        super().__init__(image_shape, latent_dim, downsamplings=len(filters), seed=seed, **kwargs)
        self.noise_stddev = _checks.non_negative_float("noise_stddev", noise_stddev)
        self.loss_name = _checks.choice("loss", loss, RECONSTRUCTION_LOSSES)
        self.filters = filters
        self.hidden_dim = _checks.hidden_widths("hidden_dim", hidden_dim)
        policy = self.dtype_policy
        self.encoder = networks.conv_encoder(
            self.image_shape, {"code": self.latent_dim}, filters, self.hidden_dim, dtype=policy
        )
        self.decoder = networks.deconv_decoder(
            self.image_shape, self.latent_dim, filters[::-1], self.hidden_dim, dtype=policy
        )
        self.noise = keras.layers.GaussianNoise(self.noise_stddev, seed=self._sub_seed(1), name="input_noise")
        self._add_trackers("loss", "mse")
        self.built = True

    _config_attributes = {"loss": "loss_name"}  # `loss` is Keras' compile argument
    has_encoder = True
    encoder_outputs = ("code",)
    # A plain AE has no prior: `sample` only shows what the decoder makes of N(0, I) codes.
    has_prior = False

    @property
    def kind(self):
        return "dae" if self.is_denoising else "ae"

    @property
    def is_denoising(self):
        return self.noise_stddev > 0

    def encode(self, images):
        """Images in [0, 1] -> codes of shape (batch, latent_dim)."""
        return self.encoder(self._images(images, "Autoencoder.encode"), training=False)

    def decode(self, codes):
        """Codes -> images in [0, 1]."""
        return ops.sigmoid(self.decoder(self._latents(codes, "Autoencoder.decode"), training=False))

    generate = decode

    def _reconstruct(self, images, condition=None):
        return ops.sigmoid(self.decoder(self.encoder(images, training=False), training=False))

    def _forward(self, images, training, condition=None):
        inputs = self.noise(images, training=training) if self.is_denoising else images
        return {"logits": self.decoder(self.encoder(inputs, training=training), training=training)}

    def _loss_terms(self, clean, outputs, training=False):
        logits = outputs["logits"]
        squared = ops.sum(ops.square(ops.sigmoid(logits) - clean), axis=(1, 2, 3))
        if self.loss_name == "bce":
            per_example = -losses.bernoulli_log_likelihood(clean, logits)
        else:
            per_example = squared
        n_pixels = float(self.image_shape[0] * self.image_shape[1] * self.image_shape[2])
        return {"loss": ops.mean(per_example), "mse": ops.mean(squared) / n_pixels}
