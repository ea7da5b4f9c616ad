"""The variational autoencoder."""

import keras
from keras import ops

from zoo import _checks, losses, networks
from zoo.base import SingleOptimizerModel
from zoo.layers import Sampling

LIKELIHOODS = ("bernoulli", "gaussian")
# Lower bound on the learned log standard deviation of the Gaussian decoder:
# keeps the likelihood finite when the decoder fits a pixel exactly.
_MIN_LOG_SCALE = -7.0


@keras.saving.register_keras_serializable(package="genzoo")
class VAE(SingleOptimizerModel):
    """Variational autoencoder (Kingma & Welling 2014).

    The encoder gives the mean and log-variance of q(z|x); a `Sampling` layer
    draws z by the reparameterisation trick; the decoder gives p(x|z). The
    loss is the negative ELBO per image, averaged over the batch:

        -log p(x|z) + beta * KL(q(z|x) || N(0, I))

    with the KL term in closed form. `beta != 1` gives the beta-VAE of
    Higgins et al. (2017).

    Args:
        image_shape: tuple (H, W, C). H and W divisible by 2**len(filters),
            C in {1, 3}.
        latent_dim: int. Dimension of z.
        likelihood: str. `"bernoulli"`: pixels are Bernoulli with logits from
            the decoder (for binary or [0, 1] grey images); `"gaussian"`:
            pixels are N(mean, sigma^2) with mean = sigmoid(decoder output)
            and one learned sigma (the sigma-VAE of Rybkin et al. 2021).
            Defaults to `"bernoulli"`.
        beta: float. Weight of the KL term. Defaults to 1.0.
        filters: tuple of int. Encoder conv widths (decoder mirrors them);
            () for none: an MLP VAE, whose decoder ends in one Dense layer
            (cheap per sample, which is what makes the k=5000 likelihood
            estimate fast). Defaults to (32, 64).
        hidden_dim: int or tuple of int. Dense layer before/after z, 0 for
            none; a tuple for several, e.g. (512, 512). Defaults to 256.
        kl_warmup_steps: int. KL warm-up (Bowman et al. 2016; Sonderby et al.
            2016): in training the KL term is weighted by
            beta * min(1, step / kl_warmup_steps), step counting the training
            steps taken (a non-trainable weight, `kl_warmup_step`, saved with
            the model, so a resumed run continues the schedule). 0 for none.
            The tracked `loss` is the weighted objective; evaluation
            (`evaluate()`, `zoo evaluate`) always uses beta. Defaults to 0.
        num_classes: int or None. A conditional VAE (Sohn et al. 2015): the
            encoder sees the label as one-hot constant image channels, the
            decoder beside z; `fit(images, labels)`, `sample(n, labels=7)`,
            `encode(images, labels)`, `decode(z, labels)`. Defaults to None.
        seed: int or None. Seeds the sampling layer and `sample()`.
            Defaults to None.
        dtype: the Keras dtype policy, e.g. "mixed_bfloat16"; saved in the
            config. Defaults to None (the global policy).

    Tracked: `loss` (negative ELBO with beta), `reconstruction_loss`
    (-log p(x|z), nats per image), `kl_loss` (nats per image). Trains on
    every Keras backend (the loss is in `compute_loss`).

    Example:
    >>> vae = VAE((28, 28, 1), latent_dim=16)
    >>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> vae.fit(images, epochs=10)          # float32 in [0, 1], NHWC
    >>> new_images = vae.sample(64, seed=0)  # decode z ~ N(0, I)
    """

    def __init__(
        self,
        image_shape,
        latent_dim,
        likelihood="bernoulli",
        beta=1.0,
        filters=(32, 64),
        hidden_dim=256,
        num_classes=None,
        kl_warmup_steps=0,
        seed=None,
        **kwargs,
    ):
        filters = _checks.filters("filters", filters, allow_empty=True)
        super().__init__(image_shape, latent_dim, downsamplings=len(filters), seed=seed, **kwargs)
        self.likelihood = _checks.choice("likelihood", likelihood, LIKELIHOODS)
        self.beta = _checks.non_negative_float("beta", beta)
        self.filters = filters
        self.hidden_dim = _checks.hidden_widths("hidden_dim", hidden_dim)
        self.kl_warmup_steps = _checks.non_negative_int("kl_warmup_steps", kl_warmup_steps)
        self.num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)
        extra = self.num_classes or 0  # the label's one-hot channels / code entries
        policy = self.dtype_policy
        height, width, channels = self.image_shape
        self.encoder = networks.conv_encoder(
            (height, width, channels + extra), {"mean": self.latent_dim, "log_var": self.latent_dim}, filters,
            self.hidden_dim, dtype=policy,
        )
        self.decoder = networks.deconv_decoder(
            self.image_shape, self.latent_dim + extra, filters[::-1], self.hidden_dim, dtype=policy
        )
        self.sampler = Sampling(seed=self._sub_seed(1), name="sampling")
        if self.likelihood == "gaussian":
            self.log_scale = self.add_weight(shape=(), initializer="zeros", name="log_scale")
        if self.kl_warmup_steps:  # only then: files of models without warm-up keep their weights
            self.kl_warmup_step = self.add_weight(shape=(), initializer="zeros", dtype="float32", trainable=False,
                                                  aggregation="only_first_replica", name="kl_warmup_step")
        self._add_trackers("loss", "reconstruction_loss", "kl_loss")
        self.built = True

    kind = "vae"
    has_encoder = True
    encoder_outputs = ("mean", "log_var")
    has_likelihood = True

    def encode(self, images, labels=None):
        """Images in [0, 1] -> (mean, log_var) of q(z|x), each (batch, latent_dim) (conditional: q(z|x, y))."""
        images = self._images(images, "VAE.encode")
        condition = self._one_hot(labels, images.shape[0], "VAE.encode")
        mean, log_var = self.encoder(self._image_input(images, condition), training=False)
        return mean, log_var

    def decode(self, z, labels=None):
        """Latents -> images in [0, 1]: the mean of p(x|z) (conditional: p(x|z, y))."""
        z = self._latents(z, "VAE.decode")
        condition = self._one_hot(labels, z.shape[0], "VAE.decode")
        return ops.sigmoid(self.decoder(self._code_input(z, condition), training=False))

    generate = decode

    def log_likelihood(self, images, logits):
        """log p(x|z) per image, for decoder outputs `logits`."""
        if self.likelihood == "bernoulli":
            return losses.bernoulli_log_likelihood(images, logits)
        log_scale = ops.maximum(self.log_scale, _MIN_LOG_SCALE)
        return losses.gaussian_log_likelihood(images, ops.sigmoid(logits), 2.0 * log_scale)

    def log_importance_weights(self, images, eps, labels=None):
        """log w = log p(x|z) + log p(z) - log q(z|x) for z = mean + exp(log_var / 2) * eps.

        `images` (batch, H, W, C) in [0, 1]; `eps` (k, batch, latent_dim)
        standard normal draws. Returns (k, batch). The importance-weighted
        bound of Burda et al. (2016) is the log-mean-exp over k."""
        images = ops.convert_to_tensor(images, "float32")
        eps = ops.convert_to_tensor(eps, "float32")
        condition = self._one_hot(labels, images.shape[0], "VAE.log_importance_weights")
        mean, log_var = self.encoder(self._image_input(images, condition), training=False)
        k, batch = ops.shape(eps)[0], ops.shape(images)[0]
        z = mean[None] + ops.exp(0.5 * log_var)[None] * eps
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        if condition is not None:  # the same label for each of an image's k draws
            condition = ops.reshape(ops.broadcast_to(condition[None], (k, batch, self.num_classes)), (-1, self.num_classes))
        logits = self.decoder(self._code_input(flat_z, condition), training=False)
        tiled = ops.reshape(ops.broadcast_to(images[None], (k,) + tuple(ops.shape(images))), (-1,) + self.image_shape)
        log_px = ops.reshape(self.log_likelihood(tiled, logits), (k, batch))
        return losses.log_importance_weights(log_px, z, eps, log_var[None])

    def _reconstruct(self, images, condition=None):
        """The decoded mean of q(z|x)."""
        mean, _ = self.encoder(self._image_input(images, condition), training=False)
        return ops.sigmoid(self.decoder(self._code_input(mean, condition), training=False))

    def _forward(self, images, training, condition=None):
        # The ELBO is an expectation over q(z|x): training and evaluation both draw z.
        mean, log_var = self.encoder(self._image_input(images, condition), training=training)
        z = self.sampler([mean, log_var])
        return {"mean": mean, "log_var": log_var,
                "logits": self.decoder(self._code_input(z, condition), training=training)}

    def _kl_weight(self, training):
        """beta, times the warm-up factor min(1, step / kl_warmup_steps) in training (and counts the step).

        The step is the model's own weight rather than `optimizer.iterations`:
        Keras' JAX train step does not map the optimizer's variables while the
        loss is computed, and a weight updated in `compute_loss` is carried on
        every backend."""
        if not (training and self.kl_warmup_steps):
            return self.beta
        # The weight is computed before the step is counted: on TensorFlow and PyTorch a variable's
        # value is read where it is used, so a later use would see the incremented count.
        weight = self.beta * ops.minimum(1.0, self.kl_warmup_step / float(self.kl_warmup_steps))
        self.kl_warmup_step.assign_add(1.0)
        return weight

    def _loss_terms(self, images, outputs, training=False):
        reconstruction = ops.mean(-self.log_likelihood(images, outputs["logits"]))
        kl = ops.mean(losses.gaussian_kl(outputs["mean"], outputs["log_var"]))
        return {"loss": reconstruction + self._kl_weight(training) * kl, "reconstruction_loss": reconstruction,
                "kl_loss": kl}
