"""int8 ONNX generators, written only where users would not see the difference.

`zoo export RUN_DIR --int8` (`export_run(..., int8=True)`) quantises the fp32
ONNX generator with onnxruntime's static QDQ quantisation (int8 weights per
output channel, uint8 activations calibrated on latents drawn from the
model's own N(0, I) prior) and keeps the result only when both hold:

- **its samples keep their quality**: the domain FID of `samples` images
  (10,000 by default) against the run's test images, in the feature space of
  the run's domain classifier (`zoo evaluate`'s metric and classifier), is
  within 5% of the fp32 file's on the same latents;
- **it is faster**: images/s at batch 1024 through `OnnxGenerator` with its
  defaults, the two files timed in interleaved rounds on this machine (int8
  gains only where the CPU has fast int8 dot products, such as AVX512-VNNI;
  the verdict is this machine's).

Otherwise no file is written, and the verdict says which rule failed and by
how much. Either way the verdict is recorded in `export.json`; a written
file carries it in its metadata (`int8_gate`), with `precision` "int8".
"""

import dataclasses
import os
import time

import numpy as np

from zoo_common import files as _files
from export import metadata as _metadata

FID_BAR = 0.05
SAMPLES = 10_000
SPEED_BATCH = 1024
RULE = (
    "int8 is written only if the domain FID of its samples is within 5% of the fp32 file's "
    "on the same latents, and it generates faster than fp32 on this machine"
)


@dataclasses.dataclass
class Verdict:
    """Whether an int8 generator is offered, and the figures that decided it."""

    fid_fp32: float
    fid_int8: float
    images_per_s_fp32: float
    images_per_s_int8: float
    samples: int
    speed_batch: int
    bar: float = FID_BAR

    @property
    def fid_change(self):
        """int8's domain FID relative to fp32's (0.02 = 2% worse)."""
        return self.fid_int8 / self.fid_fp32 - 1.0 if self.fid_fp32 > 0 else float("inf")

    @property
    def speedup(self):
        return self.images_per_s_int8 / self.images_per_s_fp32

    @property
    def keeps_quality(self):
        return bool(np.isfinite(self.fid_int8) and abs(self.fid_change) <= self.bar)

    @property
    def faster(self):
        return bool(self.speedup > 1.0)

    @property
    def offered(self):
        return self.keeps_quality and self.faster

    def describe(self):
        """One line: the figures and, when refused, which rule failed."""
        quality = (f"domain FID {self.fid_fp32:.2f} (fp32) -> {self.fid_int8:.2f} (int8), "
                   f"{100 * self.fid_change:+.1f}% (bar {100 * self.bar:.0f}%) on {self.samples:,} samples")
        speed = f"{self.speedup:.2f}x fp32's images/s at batch {self.speed_batch}"
        if self.offered:
            return f"{quality}; {speed}"
        failed = [why for why, bad in ((f"its samples are worse ({quality})", not self.keeps_quality),
                                       (f"it is not faster here ({speed})", not self.faster)) if bad]
        return "; ".join(failed)

    def to_dict(self):
        return {
            "offered": self.offered, "rule": RULE, "fid_bar": self.bar, "samples": self.samples,
            "domain_fid": {"fp32": self.fid_fp32, "int8": self.fid_int8}, "fid_change": self.fid_change,
            "images_per_s": {"fp32": self.images_per_s_fp32, "int8": self.images_per_s_int8},
            "speed_batch": self.speed_batch, "speedup": self.speedup,
        }


def quantize(fp32_path, int8_path, calibration_batches=8, batch=32, seed=1):
    """Write the static-QDQ int8 version of the genzoo ONNX file `fp32_path` at `int8_path` (atomically).

    Calibration: `calibration_batches` batches of `batch` latents from N(0, I)
    (and every class in turn for a conditional model), the inputs the
    generator sees in use. The metadata is the fp32 file's, with `precision`
    "int8" and without the fp32 parity figures.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from zoo_common.labels import every_class

    meta = _metadata.read_metadata(fp32_path)
    latent_dim, num_classes = int(meta["latent_dim"]), meta.get("num_classes")
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(calibration_batches):
        feed = {_metadata.INPUT_NAME: rng.standard_normal((batch, latent_dim)).astype(np.float32)}
        if num_classes is not None:
            feed[_metadata.LABELS_NAME] = every_class(batch, num_classes)
        feeds.append(feed)

    class Latents(CalibrationDataReader):
        def __init__(self):
            self._feeds = iter(feeds)

        def get_next(self):
            return next(self._feeds, None)

    prepared = _files.temp_file_beside(int8_path, suffix=".onnx")
    tmp = _files.temp_file_beside(int8_path, suffix=".onnx")
    try:
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, tmp, Latents(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        proto = onnx.load(tmp)
        for key in ("parity_max_abs_error", "parity_tolerance"):
            meta.pop(key, None)
        meta["precision"] = "int8"
        _metadata.set_onnx_props(proto, meta)
        onnx.save(proto, tmp)
        _files.move_into_place(tmp, int8_path)
    finally:
        _files.remove(prepared)
        _files.remove(tmp)
    return int8_path


def set_gate(int8_path, verdict):
    """Record `verdict` in the int8 file's metadata (`int8_gate`), atomically."""
    import onnx

    meta = _metadata.read_metadata(int8_path)
    meta["int8_gate"] = verdict.to_dict()
    proto = onnx.load(int8_path)
    _metadata.set_onnx_props(proto, meta)
    _files.write_with(int8_path, lambda tmp: onnx.save(proto, tmp), suffix=".onnx")


def images_per_second(paths, batch=SPEED_BATCH, rounds=5, seed=0):
    """{path: images/s} of `OnnxGenerator(path).generate` on one batch, median of `rounds` interleaved rounds
    (one call each per round, after a warm-up call), so a change in the machine's load hits every file alike."""
    from export.runtime import OnnxGenerator
    from zoo_common.labels import every_class

    generators = {path: OnnxGenerator(path) for path in paths}
    first = next(iter(generators.values()))
    z = first.sample_latents(batch, seed=seed)
    labels = None if first.num_classes is None else every_class(batch, first.num_classes)
    times = {path: [] for path in paths}
    for path, gen in generators.items():
        gen.generate(z, labels=labels)
    for _ in range(rounds):
        for path, gen in generators.items():
            start = time.perf_counter()
            gen.generate(z, labels=labels)
            times[path].append(time.perf_counter() - start)
    return {path: batch / float(np.median(t)) for path, t in times.items()}


def domain_fids(files, classifier, real_images, samples=SAMPLES, seed=0, progress=None):
    """{name: domain FID} of `samples` images of each ONNX file of `files` ({name: path}), made by
    `OnnxGenerator.sample(samples, seed)` (the same latents, and labels, for every file of one model), against
    `real_images` in the feature space of `classifier` (`zoo evaluate`'s domain FID; the real images' features
    are computed once). A file whose images are not all finite gets inf."""
    from export.runtime import OnnxGenerator
    from zoo import metrics

    say = progress or (lambda message: None)
    real = classifier.features(real_images)
    fids = {}
    for name, path in files.items():
        say(f"int8 gate: domain FID of {samples:,} {name} samples")
        images = OnnxGenerator(path).sample(samples, seed=seed)
        fids[name] = (float(metrics.frechet_distance_of_features(classifier.features(images), real))
                      if np.all(np.isfinite(images)) else float("inf"))
    return fids


def judge(fp32_path, int8_path, classifier, real_images, samples=SAMPLES, speed_batch=SPEED_BATCH, seed=0,
          progress=None):
    """The Verdict on `int8_path` against `fp32_path` (see the module docstring)."""
    say = progress or (lambda message: None)
    fids = domain_fids({"fp32": fp32_path, "int8": int8_path}, classifier, real_images, samples=samples, seed=seed,
                       progress=say)
    say(f"int8 gate: timing fp32 and int8 at batch {speed_batch}")
    speeds = images_per_second([fp32_path, int8_path], batch=speed_batch)
    return Verdict(fid_fp32=fids["fp32"], fid_int8=fids["int8"], images_per_s_fp32=speeds[fp32_path],
                   images_per_s_int8=speeds[int8_path], samples=samples, speed_batch=speed_batch)


def int8_path_for(fp32_path):
    root, ext = os.path.splitext(fp32_path)
    return f"{root}-int8{ext}"
