"""The WGAN-GP's training step, once per Keras backend, side by side.

Every version plays the same game on a batch of real images in [-1, 1]
(Gulrajani et al. 2017, Algorithm 1):

1. `n_critic` critic updates, each on the batch's real images and a fresh
   fake batch G(z_i) (no gradient into G), minimising
   L = E f(fake) - E f(real) + lambda * E (|grad_x f(x_hat)|_2 - 1)^2,
   x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per example;
2. one generator update on -E f(G(z)) through the updated critic.

The batch's real images are reused by the `n_critic` critic updates (as in
the keras-io WGAN-GP), because `fit` hands a step one batch; the paper draws
a new real batch for each. The random draws of a step (z_1, eps_1, ...,
z_n, eps_n, z_G) are taken up front in that order on every backend.

The gradient penalty needs the gradient of the critic with respect to its
input inside the critic's loss, differentiated again for the weights: a
nested TensorFlow tape, `jax.grad` inside `jax.value_and_grad`, and
`torch.autograd.grad(create_graph=True)`; `input_gradients` picks the one of
the running backend.
"""

import keras
from keras import ops

from zoo import gan_steps, replicas

__all__ = ["gradient_penalty", "input_gradients", "train_step"]


# -- the pieces, one small function each -----------------------------------------
def _tensorflow_input_gradients(critic, x):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = critic(x)
    return tape.gradient(scores, x)  # an enclosing tape records this too: second order works


def _jax_input_gradients(critic, x):
    import jax

    return jax.grad(lambda v: ops.sum(critic(v)))(x)


def _torch_input_gradients(critic, x):
    import torch

    second_order = torch.is_grad_enabled()  # False inside evaluate(), which Keras runs under no_grad
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(ops.sum(critic(x)), [x], create_graph=second_order)
    return grad


_INPUT_GRADIENTS = {"tensorflow": _tensorflow_input_gradients, "jax": _jax_input_gradients, "torch": _torch_input_gradients}


def input_gradients(critic, x):
    """d sum(critic(x)) / dx, differentiable again (for the critic's weights), on the running backend."""
    backend = keras.backend.backend()
    if backend not in _INPUT_GRADIENTS:
        raise RuntimeError(f"the WGAN-GP has gradient code for tensorflow, jax and torch, not {backend!r}.")
    return _INPUT_GRADIENTS[backend](critic, x)


def interpolate(real, fake, eps):
    """x_hat = eps * real + (1 - eps) * fake, eps of shape (batch, 1, 1, 1): points on the segments."""
    real, fake, eps = (ops.convert_to_tensor(v) for v in (real, fake, eps))
    return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic, real, fake, eps):
    """Per example (|grad f(x_hat)|_2 - 1)^2 at x_hat = interpolate(real, fake, eps) (without lambda).

    `critic` maps images to scores (batch, 1). For a linear critic f(x) = w.x
    the gradient is w everywhere, so every example's penalty is (|w| - 1)^2.
    """
    grads = input_gradients(critic, interpolate(real, fake, eps))
    # The tiny constant keeps the square root differentiable where a gradient is exactly 0.
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=tuple(range(1, len(grads.shape)))) + 1e-12)
    return ops.square(norms - 1.0)


def critic_terms(model, critic, real, fake, eps):
    """(critic objective, its logged terms) on one real and one fake batch, any backend."""
    real, fake = ops.convert_to_tensor(real), ops.convert_to_tensor(fake)
    real_scores, fake_scores = critic(real), critic(fake)
    w_distance = ops.mean(real_scores) - ops.mean(fake_scores)
    gp = ops.mean(gradient_penalty(critic, real, fake, eps))
    c_loss = -w_distance + model.gp_weight * gp
    return c_loss, {"c_loss": c_loss, "gp": gp, "w_distance": w_distance}


def generator_objective(fake_scores):
    return -ops.mean(fake_scores)


def draws(model, batch_size):
    """The step's random draws, in one fixed order: ([z_1..z_n], [eps_1..eps_n], z_G)."""
    zs, epss = [], []
    for _ in range(model.n_critic):
        zs.append(model._noise(batch_size))
        epss.append(model._interpolation_weights(batch_size))
    return zs, epss, model._noise(batch_size)


def evaluate_terms(model, real, condition=None):
    """The tracked values on a held-out batch (inference mode; the penalty on one fake batch). The
    WGAN-GP is not conditional: `condition` is None."""
    z, eps = model._noise(ops.shape(real)[0]), model._interpolation_weights(ops.shape(real)[0])
    fake = model.generator(z, training=False)
    critic = lambda x: model.critic(x, training=False)  # noqa: E731
    _, terms = critic_terms(model, critic, real, fake, eps)
    return {**terms, "g_loss": generator_objective(critic(fake))}


# -- TensorFlow ------------------------------------------------------------------
def tensorflow_train_step(model, data):
    import tensorflow as tf

    real = model._real(data, "WGANGP.fit")
    G, C = model.generator, model.critic
    zs, epss, z_g = draws(model, ops.shape(real)[0])
    critic = lambda x: C(x, training=True)  # noqa: E731
    for z, eps in zip(zs, epss):
        fake = G(z, training=True)
        with tf.GradientTape() as tape:
            c_loss, terms = critic_terms(model, critic, real, fake, eps)
            scaled = replicas.scale_loss(c_loss)  # under tf.distribute, the replicas' gradients are summed
        model.d_optimizer.apply_gradients(zip(tape.gradient(scaled, C.trainable_variables), C.trainable_variables))
    with tf.GradientTape() as tape:
        g_loss = generator_objective(critic(G(z_g, training=True)))
        scaled = replicas.scale_loss(g_loss)
    model.g_optimizer.apply_gradients(zip(tape.gradient(scaled, G.trainable_variables), G.trainable_variables))
    return model._update_trackers(**terms, g_loss=g_loss)


# -- PyTorch ---------------------------------------------------------------------
def torch_train_step(model, data):
    import torch

    real = model._real(data, "WGANGP.fit")
    G, C = model.generator, model.critic
    zs, epss, z_g = draws(model, ops.shape(real)[0])
    critic = lambda x: C(x, training=True)  # noqa: E731
    c_vars, g_vars = C.trainable_variables, G.trainable_variables
    for z, eps in zip(zs, epss):
        with torch.no_grad():
            fake = G(z, training=True)
        model.zero_grad()
        c_loss, terms = critic_terms(model, critic, real, fake, eps)
        c_loss.backward()
        with torch.no_grad():
            model.d_optimizer.apply([v.value.grad for v in c_vars], c_vars)
    model.zero_grad()  # the generator's loss also reaches the critic's weights; only G's gradients are used
    g_loss = generator_objective(critic(G(z_g, training=True)))
    g_loss.backward()
    with torch.no_grad():
        model.g_optimizer.apply([v.value.grad for v in g_vars], g_vars)
    return model._update_trackers(**{k: v.detach() for k, v in terms.items()}, g_loss=g_loss.detach())


# -- JAX (stateless) -----------------------------------------------------------------
def jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_values, metrics_values = state
    G, C = model.generator, model.critic
    t = gan_steps.State(model.trainable_variables, trainable)
    nt = gan_steps.State(model.non_trainable_variables, non_trainable)
    real = model._real(data, "WGANGP.fit")

    zs, epss, z_g = gan_steps.jax_draw(model, nt, lambda: draws(model, ops.shape(real)[0]))

    g_t, g_nt = t.take(G.trainable_variables), nt.take(G.non_trainable_variables)
    c_t, c_nt = t.take(C.trainable_variables), nt.take(C.non_trainable_variables)
    n_c_opt = len(model.d_optimizer.variables)
    c_opt, g_opt = optimizer_values[:n_c_opt], optimizer_values[n_c_opt:]

    def critic_objective(c_t, real, fake, eps):
        critic = lambda x: C.stateless_call(c_t, c_nt, x, training=True)[0]  # noqa: E731
        return critic_terms(model, critic, real, fake, eps)

    for z, eps in zip(zs, epss):
        fake, g_nt = G.stateless_call(g_t, g_nt, z, training=True)
        (_, terms), c_grads = jax.value_and_grad(critic_objective, has_aux=True)(c_t, real, fake, eps)
        c_t, c_opt = model.d_optimizer.stateless_apply(c_opt, c_grads, c_t)

    def g_objective(g_t):
        fake, new_g_nt = G.stateless_call(g_t, g_nt, z_g, training=True)
        scores, _ = C.stateless_call(c_t, c_nt, fake, training=True)
        loss = generator_objective(scores)
        return loss, (loss, new_g_nt)

    (_, (g_loss, g_nt)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(g_t)
    g_t, g_opt = model.g_optimizer.stateless_apply(g_opt, g_grads, g_t)

    t.put(G.trainable_variables, g_t)
    t.put(C.trainable_variables, c_t)
    nt.put(G.non_trainable_variables, g_nt)
    logs, metrics_values = gan_steps.jax_update_trackers(model, metrics_values, {**terms, "g_loss": g_loss})
    return logs, (t.values, nt.values, list(c_opt) + list(g_opt), metrics_values)


_TRAIN_STEPS = {"tensorflow": tensorflow_train_step, "torch": torch_train_step}


def train_step(model, data):
    """The step of the running backend (JAX's, being stateless, is `jax_train_step`)."""
    backend = keras.backend.backend()
    if backend not in _TRAIN_STEPS:
        raise RuntimeError(
            f"the WGAN-GP has training steps for the tensorflow, jax and torch backends of Keras, not {backend!r}; "
            "set KERAS_BACKEND to one of those (or pass --backend to `zoo train`)."
        )
    return _TRAIN_STEPS[backend](model, data)
