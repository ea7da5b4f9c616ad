"""One side of tests/test_distribute.py, run as a subprocess (devices are fixed when the backend starts):

    python -m tests.distribute_worker OUT.npz MODEL REPLICAS [--sync]
    TF_CONFIG=... python -m tests.distribute_worker OUT.npz MODEL workers [--sync]

Builds MODEL from fixed hyperparameters and initial weights (seed 0), trains
10 steps of global batch 32 on fixed digits, on REPLICAS devices: with
KERAS_BACKEND=tensorflow under tf.distribute.MirroredStrategy over REPLICAS
logical CPU devices (1: no strategy), with KERAS_BACKEND=jax under
keras.distribution.DataParallel (the caller sets XLA_FLAGS for the device
count); with `workers` under tf.distribute.MultiWorkerMirroredStrategy over the
cluster in TF_CONFIG (one CPU device per worker process). Writes every weight before (i0, i1, ...) and after (w0, w1, ...) and the per-step
losses to OUT.npz.
"""

import sys

import numpy as np

STEPS, BATCH = 10, 32


def main(out, name, replicas, sync=False):
    import keras

    scope = None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if replicas == "workers":
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            assert strategy.extended._in_multi_worker_mode()
            scope = strategy.scope()
        elif replicas > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
            strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
            assert strategy.num_replicas_in_sync == replicas
            scope = strategy.scope()
    elif replicas > 1:
        devices = keras.distribution.list_devices()
        assert len(devices) == replicas, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))

    import contextlib

    import zoo
    from zoo.data import digits_arrays

    images = digits_arrays("train")[0][: STEPS * BATCH]
    keras.utils.set_random_seed(0)
    with scope or contextlib.nullcontext():
        if name == "ae":
            model = zoo.Autoencoder((8, 8, 1), 4, filters=(8, 16), hidden_dim=32, seed=0)
        elif name == "vae":
            model = zoo.VAE((8, 8, 1), 4, filters=(8, 16), hidden_dim=32, seed=0)
        elif name == "wgan-gp":
            model = zoo.WGANGP((8, 8, 1), 8, generator_filters=(16, 8), kernel_size=3, n_critic=2, seed=0,
                               sync_batch_norm=sync)
        else:
            model = zoo.DCGAN((8, 8, 1), 8, generator_filters=(32, 16), kernel_size=3, seed=0, sync_batch_norm=sync)
        if name in ("dcgan", "wgan-gp"):
            model.compile_default(1e-3)
        else:
            model.compile(optimizer=keras.optimizers.SGD(0.1))
    initial = {f"i{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.weights)}
    losses = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(
        float(logs[{"dcgan": "d_loss", "wgan-gp": "c_loss"}.get(name, "loss")])))
    model.fit(images, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[record])
    weights = {f"w{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.weights)}
    np.savez(out, losses=np.array(losses), **weights, **initial)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if sys.argv[3] == "workers" else int(sys.argv[3]), "--sync" in sys.argv[4:])
