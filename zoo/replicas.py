"""What a training step needs to know of data-parallel replicas (tf.distribute), on any backend,
and the distributions `zoo train --distribute` offers.

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

import json
import os
from typing import NamedTuple

import keras

# `zoo train --distribute` names, and the backend each runs on.
DISTRIBUTIONS = {"mirrored": "tensorflow", "multi-worker": "tensorflow", "data-parallel": "jax"}

TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


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


def across_workers(strategy):
    """Whether `strategy` is a MultiWorkerMirroredStrategy over several workers."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def local_batch(strategy, batch):
    """The first local replica's part of a distributed batch (any nesting)."""
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
        batch)


def _in_replica_across_workers():
    """Whether this is a replica context of a MultiWorkerMirroredStrategy that spans several workers."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.get_replica_context() is None:
        return False
    return across_workers(tf.distribute.get_strategy())


def loggable(logs):
    """A train or test step's {name: scalar} logs, as Keras can average them over workers.

    Keras 3's TensorFlow trainer averages a step's logs over the workers of a
    MultiWorkerMirroredStrategy with `strategy.reduce("MEAN", value, axis=0)`,
    which fails on a scalar ("Invalid reduction dimension 0",
    keras-team/keras#20585); a one-element vector per replica averages to the
    scalar. Anywhere else the logs are returned as they are.
    """
    if not _in_replica_across_workers():
        return logs
    return {name: keras.ops.reshape(value, (1,)) for name, value in logs.items()}


def scale_loss(loss):
    """A per-replica mean loss, divided by the replica count so that the summed gradients are the global batch's."""
    _, count = replica()
    return loss if count == 1 else loss / count


def _rows(draw, shape, **kwargs):
    """`draw(shape, **kwargs)` for this replica's rows of the global batch.

    `shape[0]` is the per-replica batch; the draw is made for `count * shape[0]`
    rows and this replica keeps rows `index * shape[0]` onward (every replica
    advances the seed state alike, as one device would).
    """
    index, count = replica()
    if count == 1:
        return draw(shape, **kwargs)
    import tensorflow as tf

    shape = tf.unstack(tf.convert_to_tensor(shape, tf.int32)) if not isinstance(shape, (tuple, list)) else list(shape)
    rows = shape[0]
    full = draw(tf.stack([count * rows, *shape[1:]]), **kwargs)
    return full[index * rows : (index + 1) * rows]


def normal(shape, dtype=None, seed=None):
    """`keras.random.normal(shape, dtype=dtype, seed=seed)` for this replica's rows of the global batch."""
    return _rows(keras.random.normal, shape, dtype=dtype, seed=seed)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """`keras.random.uniform(...)` for this replica's rows of the global batch."""
    return _rows(keras.random.uniform, shape, minval=minval, maxval=maxval, dtype=dtype, seed=seed)


class Role(NamedTuple):
    """This process's place in a TF_CONFIG cluster."""

    task_type: str
    index: int
    workers: int  # processes in the cluster (chief included)

    @property
    def is_chief(self):
        """The process that writes the run directory: the "chief" task, else worker 0 (TensorFlow's rule)."""
        return self.task_type == "chief" or (self.task_type == "worker" and self.index == 0 and not self.has_chief)

    has_chief: bool = False


def cluster_role(environ=None):
    """This process's `Role` from the TF_CONFIG environment variable, checked the way
    MultiWorkerMirroredStrategy reads it; a ValueError that says what is wrong otherwise."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        raise ValueError("--distribute multi-worker reads the cluster from the TF_CONFIG environment variable, which "
                         f"is not set; set it on every worker, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (this worker's "
                         "index in task).")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not JSON ({err}); it should look like {TF_CONFIG_EXAMPLE}.") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not any(cluster.get(kind) for kind in ("chief", "worker")):
        raise ValueError(f"TF_CONFIG has no \"cluster\" with a \"worker\" (or \"chief\") list of host:port addresses; "
                         f"it should look like {TF_CONFIG_EXAMPLE}.")
    for kind in ("chief", "worker"):
        addresses = cluster.get(kind, [])
        if not isinstance(addresses, list) or not all(_is_address(a) for a in addresses):
            raise ValueError(f"TF_CONFIG's cluster {kind!r} must be a list of \"host:port\" strings, not {addresses!r}.")
    if len(cluster.get("chief", [])) > 1:
        raise ValueError("TF_CONFIG's cluster names more than one chief; a cluster has at most one.")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in ("chief", "worker"):
        raise ValueError("TF_CONFIG's \"task\" must name this process: {\"type\": \"worker\" or \"chief\", \"index\": I}, "
                         f"not {task!r}.")
    kind, index = task["type"], task.get("index", 0)
    count = len(cluster.get(kind, []))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"TF_CONFIG's task index {index!r} is not one of the cluster's {count} {kind} addresses "
                         f"(0 to {count - 1}); give each process its own index.")
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return Role(kind, index, workers, bool(cluster.get("chief")))


def _is_address(text):
    host, _, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
    return bool(host) and port.isdigit()


def distribution(name, cpu_replicas=None):
    """(a context manager to build and train in, the replica count) for `distribute=name`.

    "mirrored": `tf.distribute.MirroredStrategy` over every GPU, else every
    (logical) CPU device; "multi-worker": `tf.distribute.MultiWorkerMirroredStrategy`
    over the cluster in TF_CONFIG (every GPU of every worker, else one CPU
    device each; it waits until every worker has started); "data-parallel":
    `keras.distribution.DataParallel` over every JAX device. `cpu_replicas` splits the CPU into that many
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
    if name == "multi-worker":
        import tensorflow as tf

        cluster_role()  # a clear error before TensorFlow's own
        if cpu_replicas:
            raise ValueError("--cpu-replicas is for --distribute mirrored on one machine; with multi-worker each worker "
                             "trains on its GPUs, else on its CPU.")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy.scope(), strategy.num_replicas_in_sync
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
