"""What every benchmark shares: the machine's description, steady-state timing,
the printed table and the JSON record."""

import json
import os
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "datasets" / "mnist"
RESULTS = REPO / "benchmarks" / "results"

# Benchmarks import the project from the checkout even when it is not installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device="cpu"):
    """The machine and, for each framework already loaded (or TensorFlow when it is
    the Keras backend), its devices and thread counts. Never loads TensorFlow into
    a process that runs another backend, and works where TensorFlow is absent."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": device,
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ},
    }
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        try:
            import tensorflow as tf

            info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
            info["tf_threads"] = {
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            }
        except ImportError:
            pass
    if "jax" in sys.modules:
        import jax

        info["jax_devices"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
        if torch.cuda.is_available():
            info["torch_cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def read_idx(path):
    """An IDX file (gzip-compressed or not) as a numpy array: big-endian int32 magic
    (0x0000 08 NDIM for uint8), one big-endian int32 per dimension, the raw bytes."""
    import gzip

    import numpy as np

    path = pathlib.Path(path)
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an IDX file of uint8 (magic {raw[:4].hex()})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_images(split="train", folder=SHARED_MNIST):
    """MNIST images as float32 (n, 28, 28, 1) in [0, 1] from the IDX files in `folder`
    (numpy only: no TensorFlow), or None when they are not there."""
    import numpy as np

    prefix = "train" if split == "train" else "t10k"
    for name in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"):
        if (pathlib.Path(folder) / name).is_file():
            images = read_idx(pathlib.Path(folder) / name)
            return (images.astype(np.float32) / np.float32(255.0))[..., None]
    return None


def fit_windows(model, images, batch, warmup, steps, repeats, block=None):
    """Steady-state training speed of `model.fit` itself, images/s.

    One `fit` call of `warmup` steps (tracing, compilation, allocation), then one
    `fit` call of `repeats` epochs of exactly `steps` batches each (`images` is
    cut or tiled to `steps * batch` images, so every epoch is one full, shuffled
    pass and one timed window). A window runs from the epoch's start to its end,
    after `block(model, logs)` has waited for the device; Keras' own data
    adapter feeds the batches (for numpy input: slicing on the host, then the
    backend's transfer), and no per-batch callback forces a sync.
    Returns (median images/s, [images/s per window]).
    """
    import keras
    import numpy as np

    def sized(n):
        if len(images) >= n:
            return images[:n]
        return images[np.arange(n) % len(images)]

    class WindowTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rates = []

        def on_epoch_begin(self, epoch, logs=None):
            self.batches = 0
            self.start = time.perf_counter()

        def on_train_batch_begin(self, batch_index, logs=None):
            self.batches += 1

        def on_epoch_end(self, epoch, logs=None):
            (block or block_on)(model, logs)
            self.rates.append(self.batches * batch / (time.perf_counter() - self.start))
            if self.batches != steps:
                raise RuntimeError(f"fit ran {self.batches} batches in an epoch, expected {steps}")

    model.fit(sized(warmup * batch), batch_size=batch, epochs=1, shuffle=True, verbose=0)
    block_on(model, None)
    timer = WindowTimer()
    model.fit(sized(steps * batch), batch_size=batch, epochs=repeats, shuffle=True, verbose=0, callbacks=[timer])
    return median(timer.rates), timer.rates


def block_on(model, logs=None):
    """Wait until the device has finished every step dispatched so far (the Keras
    backends dispatch asynchronously on accelerators)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jax.block_until_ready(([v.value for v in model.variables], logs))
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    if logs:
        for value in logs.values():  # a host read: waits for the values (all backends)
            float(value)


def windows(step, batch, warmup, steps, repeats, sync=None):
    """Median images/s over `repeats` windows of `steps` calls of `step()`; `sync()`
    (if given) waits for the device at the end of the warm-up and of each window."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(batch * steps / (time.perf_counter() - start))
    return median(rates), rates


def log(message):
    """One time-stamped line, flushed: long stages say where they are, in a terminal or a log file."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cosine_lr(base, epochs):
    """Per-epoch learning rate for keras.callbacks.LearningRateScheduler:
    base * (1 + cos(pi * epoch / epochs)) / 2, from base down towards 0."""
    import math

    return lambda epoch, lr: base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def first_optimizer(model):
    """The model's optimizer, or the first of several (a GAN's: the discriminator's)."""
    optimizer = model.optimizer
    return optimizer.optimizers[0] if hasattr(optimizer, "optimizers") else optimizer


class EpochLog:
    """One line per epoch (a log file gets no progress bars) and the history, kept as it grows."""

    def __init__(self, path, started):
        import keras

        self.path, self.started, self.history = path, started, []

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(inner, epoch, logs=None):  # noqa: N805
                row = {"epoch": epoch + 1, "seconds": time.time() - self.started,
                       "lr": float(keras.ops.convert_to_numpy(first_optimizer(inner.model).learning_rate)),
                       **{k: float(v) for k, v in (logs or {}).items()}}
                self.history.append(row)
                log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.history, indent=1))
                os.replace(tmp, self.path)

        self.callback = _Callback()


def versions(*names):
    import importlib.metadata as md

    found = {}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found


def time_calls(fn, min_calls=10, max_calls=500, min_seconds=2.0, warmup=3):
    """Per-call wall times of `fn()` in steady state: `warmup` calls first, then at
    least `min_calls` and `min_seconds`, at most `max_calls`."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def median(values):
    return statistics.median(values)


def print_table(headers, rows, title=None):
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths)) + " |"
    print(line)
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


def write_json(data, path):
    """The figures as JSON, written atomically (zoo's own writer)."""
    from zoo_common.files import write_json as write

    return write(data, os.fspath(path))
