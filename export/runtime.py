"""Run an exported generator with onnxruntime and numpy only: no TensorFlow, no Keras.

`import export.runtime` loads numpy and onnxruntime and nothing of the
training stack, so a serving process stays small and starts fast.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort

from zoo_common import grid as _grid
from zoo_common import labels as _labels
from export import metadata as _metadata
from zoo_common.latents import interpolate_latents

# The default chunk of `generate`/`sample`/`iter_samples`: as many images as
# keep one onnxruntime call's output within CHUNK_BYTES, at most MAX_CHUNK
# (larger batches are no faster on a CPU, and the activations inside the
# generator are a few times the output).
CHUNK_BYTES = 16 * 2**20
MAX_CHUNK = 1024

# Batch parallelism on the CPU: a batch of at least 2 * MIN_PIECE images is
# cut into pieces of at least MIN_PIECE (about 2 per worker, so a worker slowed
# by other work on a shared machine leaves the rest to the others), run
# concurrently on one session from `threads` Python threads, each call on one
# onnxruntime thread. onnxruntime releases the GIL in `run` and a session may
# be run from several threads at once. Measured with benchmarks/generate_speed.py
# on a 2-core AMD EPYC shared with other work (load 3-7), onnxruntime's own
# 2-thread intra-op pool (spinning) was 1.1-1.9x slower than one thread at
# batch >= 64, and this path within 8% of one thread (the second core was
# rarely free). Below 16 images one call wins (timed apart, same machine,
# load 7): splitting 4 images of the VAE
# decoder cost 0.90 ms against 0.75 ms for one call; at 16 it was even
# (3.1 vs 3.0 ms). Every image goes through the same kernels whatever piece
# holds it, so the result is bit-identical to a single call (tested).
MIN_PIECE = 8

_PROVIDER_ALIASES = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def _resolve_providers(providers):
    available = ort.get_available_providers()
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        key = providers.lower()
        if key == "auto":
            return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        if key not in _PROVIDER_ALIASES:
            raise ValueError(
                f"providers={providers!r} is not known; use 'cpu', 'cuda', 'auto' or a list of "
                f"onnxruntime provider names (available here: {', '.join(available)})."
            )
        providers = _PROVIDER_ALIASES[key]
    providers = list(providers)
    missing = [p for p in providers if p not in available]
    if missing:
        hint = " Install onnxruntime-gpu (instead of onnxruntime) for CUDA." if "CUDAExecutionProvider" in missing else ""
        raise ValueError(
            f"onnxruntime has no {', '.join(missing)} here; available: {', '.join(available)}.{hint}"
        )
    return providers


def _usable_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity.
        return max(1, os.cpu_count() or 1)


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r} must be an integer >= 1.")
    return int(n)


class OnnxGenerator:
    """A genzoo generator exported to ONNX, run with onnxruntime.

    Works for every exported model kind: the decoder of an AE/VAE, the
    generator of a DCGAN. Latents go in as float arrays of shape
    (batch, latent_dim); images come out as float32 NHWC in [0, 1].

    Args:
        path: str. An .onnx file written by `export.to_onnx` or `zoo export`.
        providers: None, str or list of str. onnxruntime execution providers:
            None or "cpu" for the CPU; "cuda" for the GPU (needs the
            onnxruntime-gpu package; CPU kept as the fallback for any
            unsupported node); "auto" for CUDA when available, else CPU; or
            an explicit list such as ["CUDAExecutionProvider",
            "CPUExecutionProvider"]. Defaults to None.
        threads: int or None. CPU cores to use. On the CPU provider a batch
            of at least 2 * MIN_PIECE (16) images is split into pieces run
            concurrently by `threads` threads, each onnxruntime call on one
            thread (batch parallelism); smaller batches run as one call on
            one thread. `threads=1` never splits. With a GPU provider this is
            onnxruntime's intra_op_num_threads. Defaults to None: the cores
            this process may run on (`os.sched_getaffinity`).

    A conditional model's file (`num_classes` set) takes a class per latent:
    `generate(z, labels=...)`, `sample(n, labels=7)` (without labels, every
    class in turn), `interpolate(z0, z1, steps, label=3)`.

    Attributes: `path`, `metadata` (the whole dict), and from it `model`
    ("ae", "dae", "vae" or "dcgan"), `latent_dim`, `num_classes` (None unless
    conditional), `image_shape` (H, W, C),
    `value_range`, `dataset`, `precision`, `genzoo_version`; `providers`
    (those the session really uses); `threads` (the cores a large batch is
    spread over; 1 with a GPU provider).

    Example:
    >>> gen = OnnxGenerator("runs/digits-vae/export/vae.onnx")
    >>> images = gen.sample(64, seed=0)           # (64, 8, 8, 1) float32 in [0, 1]
    >>> frames = gen.interpolate(z0, z1, steps=8)  # a walk between two latents
    """

    def __init__(self, path, providers=None, threads=None):
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ValueError(f"{path} is a directory (a SavedModel?); OnnxGenerator loads an .onnx file.")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} does not exist (expected an .onnx file written by `zoo export`).")
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
                raise ValueError(f"threads={threads!r} must be an integer >= 1 or None.")
            threads = int(threads)
        chosen = _resolve_providers(providers)
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if chosen[0] == "CPUExecutionProvider":
            # One thread per call; the parallelism is across the batch (see MIN_PIECE).
            self.threads = threads if threads is not None else _usable_cores()
            options.intra_op_num_threads = 1
        else:
            self.threads = 1
            if threads is not None:
                options.intra_op_num_threads = threads
        self._pool = None
        self._pool_lock = threading.Lock()
        try:
            self._session = ort.InferenceSession(path, options, providers=chosen)
        except Exception as err:  # onnxruntime raises its own exception types for unreadable models.
            raise ValueError(f"{path} is not an ONNX model onnxruntime can load ({err}).") from None
        self.path = path
        self.metadata = _metadata.from_onnx_props(self._session.get_modelmeta().custom_metadata_map, path)
        self.model = self.metadata["model"]
        self.latent_dim = int(self.metadata["latent_dim"])
        self.num_classes = self.metadata.get("num_classes")
        self.image_shape = tuple(int(d) for d in self.metadata["image_shape"])
        self.value_range = tuple(self.metadata["value_range"])
        self.dataset = self.metadata["dataset"]
        self.precision = self.metadata.get("precision", "fp32")
        self.genzoo_version = self.metadata["genzoo_version"]
        self.providers = self._session.get_providers()
        self._check_interface()

    def _check_interface(self):
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        names = ([i.name for i in inputs], [o.name for o in outputs])
        expected = [_metadata.INPUT_NAME] + ([] if self.num_classes is None else [_metadata.LABELS_NAME])
        if names != (expected, [_metadata.OUTPUT_NAME]):
            raise ValueError(f"{self.path}: expected the inputs {expected} and one output 'images'; found {names}.")
        shape = inputs[0].shape
        if len(shape) != 2 or shape[1] != self.latent_dim or inputs[0].type != "tensor(float)":
            raise ValueError(
                f"{self.path}: input 'z' is {inputs[0].type} {shape}, but the metadata says "
                f"float32 [batch, {self.latent_dim}]."
            )

    def __repr__(self):
        return (
            f"OnnxGenerator({self.path!r}, model={self.model!r}, latent_dim={self.latent_dim}, "
            f"image_shape={self.image_shape}, precision={self.precision!r}, providers={self.providers})"
        )

    def _latents(self, z, where):
        z = np.asarray(z)
        if not np.issubdtype(z.dtype, np.floating):
            raise TypeError(
                f"{where}: z must be a float array (float16/32/64, cast to float32); got dtype {z.dtype}."
            )
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            hint = " Add a batch axis: z[None]." if z.shape == (self.latent_dim,) else ""
            raise ValueError(
                f"{where}: z must have shape (batch, latent_dim) = (batch, {self.latent_dim}); "
                f"got {z.shape}.{hint}"
            )
        return np.ascontiguousarray(z, dtype=np.float32)

    def _labels(self, labels, n, where, every_class=False):
        """A conditional model's labels as int64 (n,), each in [0, num_classes): one int for all, or
        one per latent (`every_class`: None means 0, 1, ..., num_classes - 1, 0, ...); None otherwise."""
        k = self.num_classes
        if k is None:
            if labels is not None:
                raise ValueError(f"{where}: {self.path} holds a generator that is not conditional; drop labels=.")
            return None
        if labels is None:
            if not every_class:
                raise ValueError(f"{where}: {self.path} holds a conditional generator ({k} classes): pass labels= (a "
                                 f"class in 0..{k - 1} per latent, or one for all).")
            return _labels.every_class(n, k)
        return _labels.check(labels, n, k, where, per="latent")

    def chunk_size(self, batch_size=None):
        """Images per onnxruntime call: `batch_size` when given, else the most
        whose float32 output stays within CHUNK_BYTES (16 MiB), at most
        MAX_CHUNK (1024) and at least 1."""
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
                raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1 or None.")
            return int(batch_size)
        per_image = 4 * int(np.prod(self.image_shape))
        return int(max(1, min(MAX_CHUNK, CHUNK_BYTES // per_image)))

    def _run(self, z, labels=None):
        feed = {_metadata.INPUT_NAME: z}
        if labels is not None:
            feed[_metadata.LABELS_NAME] = labels
        return self._session.run([_metadata.OUTPUT_NAME], feed)[0]

    def piece_size(self, n, batch_size=None):
        """Images per onnxruntime call when generating `n` images: `n` itself
        (or the chunk, if smaller) on the single-call path, used when `threads`
        is 1 or the chunk has fewer than 2 * MIN_PIECE images; else about
        chunk / (2 * threads), at least MIN_PIECE, run `threads` at a time."""
        chunk = min(_check_count(n), self.chunk_size(batch_size))
        if self.threads == 1 or chunk < 2 * MIN_PIECE:
            return chunk
        return max(MIN_PIECE, -(-chunk // (2 * self.threads)))

    def _executor(self):
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="genzoo-onnx")
            return self._pool

    def _run_into(self, z, out, piece, labels=None):
        """out[:] = the images of z, in calls of `piece` images; concurrently
        on `threads` threads (the caller's and threads - 1 pooled ones) when
        there is more than one piece. Each thread takes the next piece when
        it finishes one, so at most `threads` pieces are in flight."""
        n = len(z)
        if piece >= n:
            out[:] = self._run(z, labels)
            return out
        starts = iter(range(0, n, piece))
        lock = threading.Lock()

        def work():
            while True:
                with lock:
                    start = next(starts, None)
                if start is None:
                    return
                out[start : start + piece] = self._run(z[start : start + piece],
                                                       None if labels is None else labels[start : start + piece])

        workers = 1 if n < 2 * MIN_PIECE else min(self.threads, -(-n // piece))
        helpers = [self._executor().submit(work) for _ in range(workers - 1)]
        try:
            work()
        finally:
            for helper in helpers:
                helper.result()
        return out

    def _generate_chunk(self, z, labels=None):
        """The images of one chunk of latents (the chunk is already within chunk_size)."""
        piece = self.piece_size(len(z), len(z))
        if piece >= len(z):
            return self._run(z, labels)
        return self._run_into(z, np.empty((len(z), *self.image_shape), np.float32), piece, labels)

    def generate(self, z, batch_size=None, labels=None):
        """Latents (batch, latent_dim) -> images (batch, H, W, C), float32 in [0, 1].

        The latents run through onnxruntime in chunks of `batch_size` (int;
        None: `chunk_size()`, about 16 MiB of output per call), so memory
        beyond the returned array stays bounded for any batch; the images are
        those of one call, bit for bit. On the CPU a chunk of 16 or more
        images is further split across `threads` cores (see `piece_size`);
        the calls in flight then hold at most about half a chunk between them
        (`threads` x `batch_size` when an explicit `batch_size` is under 16).
        A conditional model's file needs `labels` (one int, or one per latent).
        """
        z = self._latents(z, "OnnxGenerator.generate")
        labels = self._labels(labels, len(z), "OnnxGenerator.generate")
        piece = self.piece_size(len(z), batch_size)
        if piece >= len(z):
            return self._run(z, labels)
        return self._run_into(z, np.empty((len(z), *self.image_shape), np.float32), piece, labels)

    def sample_latents(self, n, seed=None):
        """n latents z ~ N(0, I), float32 (batch, latent_dim), from numpy's generator seeded by `seed`."""
        n = _check_count(n)
        return np.random.default_rng(seed).standard_normal((n, self.latent_dim), dtype=np.float32)

    def iter_samples(self, n, seed=None, batch_size=None, labels=None):
        """Yield `n` images from z ~ N(0, I) as consecutive float32 arrays
        (chunk, H, W, C), drawing the latents chunk by chunk: memory stays
        that of one chunk for any `n`, and the concatenated chunks equal
        `sample(n, seed)` (numpy draws the same normals in pieces or at once).

        Example:
        >>> for images in gen.iter_samples(10**6, seed=0):   # never 10**6 images in memory
        ...     save(images)
        """
        n, chunk = _check_count(n), self.chunk_size(batch_size)
        labels = self._labels(labels, n, "OnnxGenerator.sample", every_class=True)  # checked now, not at the first chunk
        return self._chunks(n, chunk, seed, labels)

    def _chunks(self, n, chunk, seed, labels):
        rng = np.random.default_rng(seed)
        for start in range(0, n, chunk):
            z = rng.standard_normal((min(chunk, n - start), self.latent_dim), dtype=np.float32)
            yield self._generate_chunk(z, None if labels is None else labels[start : start + len(z)])

    def sample(self, n, seed=None, batch_size=None, labels=None):
        """Generate `n` images from z ~ N(0, I); the same `seed` gives the same images.

        Runs in chunks (see `generate`); only the returned array grows with
        `n`. To handle more images than fit in memory, use `iter_samples`.
        (For an autoencoder, whose codes follow no prior, this shows what the
        decoder makes of N(0, I) codes, as `zoo train`'s samples.png does.)
        A conditional model's: of class `labels` (one int, or one per image;
        None: every class in turn).
        """
        n = _check_count(n)
        images = np.empty((n, *self.image_shape), np.float32)
        start = 0
        for chunk in self.iter_samples(n, seed, batch_size, labels):
            images[start : start + len(chunk)] = chunk
            start += len(chunk)
        return images

    def interpolate(self, z0, z1, steps, method="linear", label=None):
        """Images along a path from latent `z0` to `z1` (each (latent_dim,) or (1, latent_dim)).

        Args:
            steps: int >= 2. Number of images, both ends included.
            method: "linear" (straight line) or "slerp" (great circle, which
                keeps the norm typical of N(0, I) samples). Defaults to "linear".

        Returns:
            float32 array (steps, H, W, C) in [0, 1]; the first image is
            generate(z0), the last generate(z1).
            label: int. A conditional model's class along the whole walk.
        """
        if method not in ("linear", "slerp", "spherical"):
            raise ValueError(f"method={method!r} is not supported; allowed values are 'linear' and 'slerp'.")
        ends = []
        for name, z in (("z0", z0), ("z1", z1)):
            z = np.asarray(z)
            z = self._latents(z.reshape(1, -1) if z.ndim == 1 else z, f"OnnxGenerator.interpolate ({name})")
            if len(z) != 1:
                raise ValueError(f"OnnxGenerator.interpolate: {name} must be one latent; got a batch of {len(z)}.")
            ends.append(z[0])
        return self.generate(interpolate_latents(ends[0], ends[1], steps, method), labels=label)

    @staticmethod
    def to_uint8(images):
        """Images in [0, 1] -> uint8 in [0, 255] (rounded, clipped), same shape."""
        return _grid.to_uint8(images)
