"""Per-example loss terms of the zoo's models, written with `keras.ops` only.

Every function returns one value per example (shape `[batch]`); the models
reduce over the batch in `train_step`. All forms are the numerically stable
ones: Bernoulli terms take logits, Gaussian terms take log-variances, and no
function ever evaluates `log(sigmoid(x))`.
"""

import math

from keras import ops

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_over_non_batch(x):
    rank = len(x.shape)
    if rank <= 1:
        return x
    return ops.sum(x, axis=tuple(range(1, rank)))


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over the latent.

    The closed form of Kingma & Welling (2014), appendix B:
    `0.5 * sum(exp(log_var) + mean**2 - 1 - log_var)`.
    """
    mean = ops.convert_to_tensor(mean)
    log_var = ops.convert_to_tensor(log_var)
    return 0.5 * _sum_over_non_batch(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var)


def binary_cross_entropy_with_logits(targets, logits):
    """Elementwise `-[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))]`, stable form."""
    logits = ops.convert_to_tensor(logits)
    targets = ops.convert_to_tensor(targets, dtype=logits.dtype)
    return ops.relu(logits) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))


def bernoulli_log_likelihood(x, logits):
    """log p(x | logits) of independent Bernoulli pixels, summed per example.

    `x` may be any values in [0, 1] (for grey-level targets this is the usual
    cross-entropy reconstruction term rather than a normalised likelihood).
    """
    return -_sum_over_non_batch(binary_cross_entropy_with_logits(x, logits))


def gaussian_log_likelihood(x, mean, log_var):
    """log N(x | mean, exp(log_var)) of independent pixels, summed per example.

    `log_var` broadcasts against `x` (a scalar gives one shared variance).
    """
    x = ops.convert_to_tensor(x)
    mean = ops.convert_to_tensor(mean, dtype=x.dtype)
    log_var = ops.convert_to_tensor(log_var, dtype=x.dtype)
    elementwise = -0.5 * (_LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var))
    elementwise = elementwise + ops.zeros_like(x)  # broadcast a scalar log_var
    return _sum_over_non_batch(elementwise)


def log_importance_weights(log_px, z, eps, log_var):
    """log w = log p(x|z) + log N(z; 0, I) - log q(z|x) for z = mean + exp(log_var / 2) * eps.

    The terms of the importance-weighted bound (Burda et al. 2016), elementwise
    over leading axes: `log_px` (..., ) and `z`, `eps`, `log_var` (..., latent),
    `log_var` broadcasting. log q(z|x) is written through eps, which is exact
    and avoids dividing by the posterior's standard deviation.
    """
    log_pz = ops.sum(-0.5 * ops.square(z) - 0.5 * _LOG_2PI, axis=-1)
    log_qz = ops.sum(-0.5 * ops.square(eps) - 0.5 * _LOG_2PI - 0.5 * log_var, axis=-1)
    return log_px + log_pz - log_qz


def discriminator_loss(real_logits, fake_logits):
    """J(D) of Goodfellow et al. (2014) per example: -log D(x) - log(1 - D(G(z))).

    With logits l, -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) =
    softplus(l). `real_logits[i]` and `fake_logits[i]` pair up, so both
    batches must have the same size.
    """
    return _sum_over_non_batch(ops.softplus(-real_logits)) + _sum_over_non_batch(
        ops.softplus(fake_logits)
    )


def generator_loss(fake_logits, mode="non_saturating"):
    """The generator's loss per example.

    Args:
        fake_logits: discriminator logits on generated images.
        mode: str. `"minimax"` descends log(1 - D(G(z))) = -softplus(l), the
            generator's side of the original min-max game; `"non_saturating"`
            descends -log D(G(z)) = softplus(-l), which keeps strong
            gradients early in training when D rejects every sample.
    """
    if mode == "minimax":
        return -_sum_over_non_batch(ops.softplus(fake_logits))
    if mode == "non_saturating":
        return _sum_over_non_batch(ops.softplus(-fake_logits))
    raise ValueError(
        f"generator_loss: unknown mode={mode!r}; allowed values are 'non_saturating' and 'minimax'."
    )
