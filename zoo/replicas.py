"""What a training step needs to know of data-parallel replicas (tf.distribute), on any backend.

Under a `tf.distribute` strategy (MirroredStrategy, MultiWorkerMirroredStrategy)
each replica computes the loss on its share of the global batch and the
optimizers sum the replicas' gradients; so a per-replica mean loss is divided
by the replica count (as Keras' own losses do), and the step equals one step
on the global batch. Sampling noise is drawn for the global batch from the
same seed state on every replica, and each replica takes its own rows: the
replicas draw different noise, the same noise one device would have drawn.

With JAX and `keras.distribution.DataParallel` the step sees the global batch
(sharded arrays), and nothing here changes anything; so on PyTorch.
"""

import keras

# `zoo train --distribute` names, and the backend each runs on.
DISTRIBUTIONS = {"mirrored": "tensorflow", "data-parallel": "jax"}


def replica():
    """(this replica's index, replica count) inside a `tf.distribute` replica context, else (0, 1)."""
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return 0, 1
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:  # cross-replica context, or one replica
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def scale_loss(loss):
    """A per-replica mean loss, divided by the replica count so that the summed gradients are the global batch's."""
    _, count = replica()
    return loss if count == 1 else loss / count


def normal(shape, dtype=None, seed=None):
    """`keras.random.normal(shape, dtype, seed)` for this replica's rows of the global batch.

    `shape[0]` is the per-replica batch; the draw is made for `count * shape[0]`
    rows and this replica keeps rows `index * shape[0]` onward (every replica
    advances the seed state alike, as one device would).
    """
    index, count = replica()
    if count == 1:
        return keras.random.normal(shape, dtype=dtype, seed=seed)
    import tensorflow as tf

    shape = tf.unstack(tf.convert_to_tensor(shape, tf.int32)) if not isinstance(shape, (tuple, list)) else list(shape)
    rows = shape[0]
    full = keras.random.normal(tf.stack([count * rows, *shape[1:]]), dtype=dtype, seed=seed)
    return full[index * rows : (index + 1) * rows]


def distribution(name, cpu_replicas=None):
    """(a context manager to build and train in, the replica count) for `distribute=name`.

    "mirrored": `tf.distribute.MirroredStrategy` over every GPU, else every
    (logical) CPU device; "data-parallel": `keras.distribution.DataParallel`
    over every JAX device. `cpu_replicas` splits the CPU into that many
    logical devices first (TensorFlow; for JAX the CLI sets XLA_FLAGS before
    JAX starts).
    """
    import contextlib

    if name is None:
        return contextlib.nullcontext(), 1
    backend = keras.backend.backend()
    needs = DISTRIBUTIONS.get(name)
    if needs is None:
        raise ValueError(f"distribute={name!r} is not supported; allowed values are {', '.join(DISTRIBUTIONS)}.")
    if needs != backend:
        other = next((n for n, b in DISTRIBUTIONS.items() if b == backend), None)
        raise ValueError(f"--distribute {name} runs on the {needs} backend, not {backend}; pass --backend {needs}"
                         + (f", or use --distribute {other} on {backend}." if other else
                            f" ({backend} has no distribution in Keras)."))
    if name == "mirrored":
        import tensorflow as tf

        if cpu_replicas:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
            except RuntimeError as err:
                raise ValueError(f"--cpu-replicas must be set before TensorFlow starts ({err}).") from None
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices)
        return strategy.scope(), strategy.num_replicas_in_sync
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return contextlib.nullcontext(), len(devices)
