"""The DCGAN's training step, once per Keras backend, side by side.

Every version plays the same game on a batch of real images in [-1, 1]:

1. one generator pass, fake = G(z), z ~ N(0, I) from the model's noise seed;
2. one discriminator update on J(D) = -E log D(x) - E log(1 - D(fake)), with
   the fake batch held fixed (no gradient into G);
3. one generator update through the *updated* discriminator, on the same
   fake batch (G's gradient flows back through step 1's pass).

Discriminator calls run in training mode (batch statistics), real and fake
batches separately, in the order real, fake, fake; so batch-norm moving
statistics are updated three times per step on every backend. Regularisation
losses of either network (none in the zoo's networks) are added to its
player's objective. The manner follows the Keras guides "Customizing what
happens in fit()" for TensorFlow, JAX and PyTorch.
"""

import keras
from keras import ops

from zoo import gan_steps, losses, replicas


def _logs(d_loss, g_loss, real_logits, fake_logits):
    return {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "real_score": ops.mean(ops.sigmoid(real_logits)),
        "fake_score": ops.mean(ops.sigmoid(fake_logits)),
    }


def _with_losses(loss, extra):
    """A player's objective: its loss plus its network's regularisation losses `extra` (a list)."""
    return loss + sum(ops.sum(e) for e in extra) if extra else loss


def evaluate_terms(model, real, condition=None):
    """The tracked values on a held-out batch, inference mode (any backend); `condition`: a
    conditional DCGAN's one-hot labels of the batch (its fakes are drawn for them)."""
    fake = model.generator(model._code_input(model._noise(ops.shape(real)[0]), condition), training=False)
    real_logits = model.discriminator(model._image_input(real, condition), training=False)
    fake_logits = model.discriminator(model._image_input(fake, condition), training=False)
    d_loss = ops.mean(losses.discriminator_loss(real_logits, fake_logits))
    g_loss = ops.mean(losses.generator_loss(fake_logits, model.loss_name))
    return _logs(d_loss, g_loss, real_logits, fake_logits)


# -- TensorFlow ---------------------------------------------------------------
def tensorflow_train_step(model, data):
    import tensorflow as tf

    real, c = model._real(data, "DCGAN.fit"), model._condition(data, "DCGAN.fit")
    G, D = model.generator, model.discriminator
    g_vars, d_vars = G.trainable_variables, D.trainable_variables
    # One generator pass, recorded for the generator's update only.
    with tf.GradientTape(watch_accessed_variables=False) as g_tape:
        g_tape.watch([v.value for v in g_vars])  # the backing tf.Variables
        fake = G(model._code_input(model._noise(ops.shape(real)[0]), c), training=True)
        with tf.GradientTape() as d_tape:
            real_logits = D(model._image_input(real, c), training=True)
            fake_logits = D(model._image_input(ops.stop_gradient(fake), c), training=True)
            d_loss = ops.mean(losses.discriminator_loss(real_logits, fake_logits))
            d_total = replicas.scale_loss(_with_losses(d_loss, D.losses))
        model.d_optimizer.apply_gradients(zip(d_tape.gradient(d_total, d_vars), d_vars))
        g_logits = D(model._image_input(fake, c), training=True)
        g_loss = ops.mean(losses.generator_loss(g_logits, model.loss_name))
        g_total = replicas.scale_loss(_with_losses(g_loss, G.losses))
    model.g_optimizer.apply_gradients(zip(g_tape.gradient(g_total, g_vars), g_vars))
    return model._update_trackers(**_logs(d_loss, g_loss, real_logits, fake_logits))


# -- PyTorch ------------------------------------------------------------------
def torch_train_step(model, data):
    import torch

    real, c = model._real(data, "DCGAN.fit"), model._condition(data, "DCGAN.fit")
    G, D = model.generator, model.discriminator
    fake = G(model._code_input(model._noise(ops.shape(real)[0]), c), training=True)

    model.zero_grad()
    real_logits = D(model._image_input(real, c), training=True)
    fake_logits = D(model._image_input(fake.detach(), c), training=True)
    d_loss = ops.mean(losses.discriminator_loss(real_logits, fake_logits))
    _with_losses(d_loss, D.losses).backward()
    d_vars = D.trainable_variables
    with torch.no_grad():
        model.d_optimizer.apply([v.value.grad for v in d_vars], d_vars)

    model.zero_grad()  # the generator's loss also reaches D's weights; only G's gradients are used
    g_logits = D(model._image_input(fake, c), training=True)
    g_loss = ops.mean(losses.generator_loss(g_logits, model.loss_name))
    _with_losses(g_loss, G.losses).backward()
    g_vars = G.trainable_variables
    with torch.no_grad():
        model.g_optimizer.apply([v.value.grad for v in g_vars], g_vars)
    return model._update_trackers(
        **_logs(d_loss.detach(), g_loss.detach(), real_logits.detach(), fake_logits.detach())
    )


# -- JAX (stateless) -----------------------------------------------------------
def _stateless_loss_call(network, trainable, non_trainable, inputs):
    """(outputs, new non-trainable values, regularisation losses) of a training-mode call."""
    return network.stateless_call(trainable, non_trainable, inputs, training=True, return_losses=True)


def jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_values, metrics_values = state
    G, D = model.generator, model.discriminator
    t = gan_steps.State(model.trainable_variables, trainable)
    nt = gan_steps.State(model.non_trainable_variables, non_trainable)
    real, c = model._real(data, "DCGAN.fit"), model._condition(data, "DCGAN.fit")

    z = model._code_input(gan_steps.jax_draw(model, nt, lambda: model._noise(ops.shape(real)[0])), c)

    g_t, g_nt = t.take(G.trainable_variables), nt.take(G.non_trainable_variables)
    d_t, d_nt = t.take(D.trainable_variables), nt.take(D.non_trainable_variables)
    n_d_opt = len(model.d_optimizer.variables)
    d_opt, g_opt = optimizer_values[:n_d_opt], optimizer_values[n_d_opt:]

    # 1. One generator pass; its VJP carries the generator's gradient later.
    def generator_pass(g_t):
        fake, new_g_nt, extra = _stateless_loss_call(G, g_t, g_nt, z)
        return fake, (new_g_nt, extra)

    fake, generator_vjp, (g_nt, g_extra) = jax.vjp(generator_pass, g_t, has_aux=True)

    # 2. The discriminator's update, the fake batch held fixed.
    def discriminator_objective(d_t, d_nt):
        real_logits, d_nt, extra_real = _stateless_loss_call(D, d_t, d_nt, model._image_input(real, c))
        fake_logits, d_nt, _ = _stateless_loss_call(D, d_t, d_nt, model._image_input(jax.lax.stop_gradient(fake), c))
        d_loss = ops.mean(losses.discriminator_loss(real_logits, fake_logits))
        return _with_losses(d_loss, extra_real), (d_loss, real_logits, fake_logits, d_nt)

    (_, (d_loss, real_logits, fake_logits, d_nt)), d_grads = jax.value_and_grad(
        discriminator_objective, has_aux=True
    )(d_t, d_nt)
    d_t, d_opt = model.d_optimizer.stateless_apply(d_opt, d_grads, d_t)

    # 3. The generator's update, judged by the updated discriminator.
    def generator_objective(fake):
        logits, new_d_nt, _ = _stateless_loss_call(D, d_t, d_nt, model._image_input(fake, c))
        g_loss = ops.mean(losses.generator_loss(logits, model.loss_name))
        return g_loss, (g_loss, new_d_nt)

    (_, (g_loss, d_nt)), fake_grad = jax.value_and_grad(generator_objective, has_aux=True)(fake)
    (g_grads,) = generator_vjp(fake_grad)
    if g_extra:
        extra_grads = jax.grad(lambda g_t: _with_losses(0.0, _stateless_loss_call(G, g_t, g_nt, z)[2]))(g_t)
        g_grads = [a + b for a, b in zip(g_grads, extra_grads)]
    g_t, g_opt = model.g_optimizer.stateless_apply(g_opt, g_grads, g_t)

    t.put(G.trainable_variables, g_t)
    t.put(D.trainable_variables, d_t)
    nt.put(G.non_trainable_variables, g_nt)
    nt.put(D.non_trainable_variables, d_nt)
    logs, metrics_values = gan_steps.jax_update_trackers(
        model, metrics_values, _logs(d_loss, g_loss, real_logits, fake_logits)
    )
    return logs, (t.values, nt.values, list(d_opt) + list(g_opt), metrics_values)


def _unsupported(model, data):
    raise RuntimeError(
        f"the DCGAN has training steps for the tensorflow, jax and torch backends of Keras, not "
        f"{keras.backend.backend()!r}; set KERAS_BACKEND to one of those (or pass --backend to `zoo train`)."
    )


_TRAIN_STEPS = {"tensorflow": tensorflow_train_step, "torch": torch_train_step}


def train_step(model, data):
    """The step of the running backend (JAX's, being stateless, is `jax_train_step`)."""
    return _TRAIN_STEPS.get(keras.backend.backend(), _unsupported)(model, data)
