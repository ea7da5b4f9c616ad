"""Training and generation speed of genzoo with Keras on JAX, next to the same
DCGAN written in PyTorch, on one GPU (or, for a smoke run, the CPU).

On a GPU machine with JAX (CUDA) and PyTorch (CUDA) installed; TensorFlow,
tensorflow-datasets and onnx are not needed and not imported. From the
checkout's root, one line:

    pip install keras numpy && KERAS_BACKEND=jax python benchmarks/gpu_speed.py --device gpu

(where JAX or PyTorch lack CUDA: pip install "jax[cuda12]" torch). Each
(model, precision, batch) compiles its own train step first; --models,
--batch-sizes and --feeds narrow a run.

    KERAS_BACKEND=jax python benchmarks/gpu_speed.py --device cpu --quick    # smoke run

What runs (both frameworks in one process, one after the other, on the same device):

- genzoo (Keras on JAX): the DCGAN at 28x28x1 (MNIST from ../shared/datasets/mnist
  when present, else uniform noise) and at 64x64x3 (uniform noise), the VAE at
  28x28x1; float32 and mixed_bfloat16; batch 128 and 512. Training goes
  through `model.fit` itself (Keras' jitted train step and its own data
  adapter), with the images either as numpy arrays (feed "host": sliced on the
  host, sent to the device one batch ahead, as `fit` does) or already on the
  device (feed "device": a jax.Array). Generation is the public `generate(z)`
  (the VAE's is its decoder mean) traced into one jitted function of the weights.
- PyTorch (benchmarks/peers/torch_dcgan.py): the very same DCGAN networks
  (same widths, kernel 5, batch norm, ReLU / LeakyReLU(0.2), same parameter
  counts, checked) and the same step: one discriminator update on the real
  and the detached fake batch, then one generator update through the updated
  discriminator, one generator pass per batch, Adam(2e-4, 0.5) each; in
  float32 (NCHW), float32 channels_last, bf16 autocast and bf16 autocast
  channels_last; cudnn.benchmark on. Its data come the same two ways (host
  batches pinned and copied one batch ahead, or a tensor on the device).
  The generator update computes no discriminator weight gradients (genzoo's
  does not either).

float32 means each framework's fast default on NVIDIA tensor cores: JAX/XLA
uses TF32 for float32 convolutions and matmuls, so PyTorch is set to the same
(`set_float32_matmul_precision("high")`, cudnn TF32); `--fp32 full` makes both
full float32. XLA_PYTHON_CLIENT_PREALLOCATE defaults to false here so JAX and
PyTorch share the GPU's memory.

Timing: `--warmup-steps` steps first (tracing, compilation, cudnn autotuning),
then `--repeats` windows of `--steps` steps; each window ends when the device
has finished (jax.block_until_ready on the model state / outputs,
torch.cuda.synchronize). The figure is the median window, in images/s. The
last table gives genzoo / best PyTorch mode at the same precision, batch and
feed: the target is >= 1.0. Writes benchmarks/results/gpu_speed.json with
versions, device names and thread counts.
"""

import argparse
import os
import sys
import time

import numpy as np

# The checkout's root goes on sys.path here; _common itself imports neither
# Keras nor TensorFlow at import time.
from _common import RESULTS, fit_windows, machine, mnist_images, print_table, versions, windows, write_json

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))

MODELS = {  # name -> (model family, image shape)
    "dcgan28": ("dcgan", (28, 28, 1)),
    "dcgan64": ("dcgan", (64, 64, 3)),
    "vae28": ("vae", (28, 28, 1)),
}
POLICIES = ("float32", "mixed_bfloat16")
TORCH_MODES = {  # name -> (precision it compares with, channels_last, autocast to bf16)
    "float32": ("float32", False, False),
    "float32 channels_last": ("float32", True, False),
    "bf16 autocast": ("mixed_bfloat16", False, True),
    "bf16 autocast channels_last": ("mixed_bfloat16", True, True),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["gpu", "cuda", "cpu"], default="gpu", help="cuda is the same as gpu")
    parser.add_argument("--quick", action="store_true", help="tiny batches and step counts: a smoke run")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {','.join(MODELS)}")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated; default 128,512 (--quick: 8,16)")
    parser.add_argument("--feeds", default="host,device", help="host (numpy arrays), device (arrays on the device)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed window (default 30, --quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed windows (default 5, --quick 2)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default 10, --quick 1")
    parser.add_argument("--fp32", choices=["tf32", "full"], default="tf32", help="float32 matmul/conv precision, both frameworks")
    parser.add_argument("--no-torch", action="store_true", help="genzoo only")
    parser.add_argument("--out", default=str(RESULTS / "gpu_speed.json"))
    args = parser.parse_args()
    args.device = "gpu" if args.device == "cuda" else args.device
    args.models = [m for m in args.models.split(",") if m]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {list(MODELS)}")
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("8,16" if args.quick else "128,512")).split(",")]
    args.feeds = [f for f in args.feeds.split(",") if f]
    if not set(args.feeds) <= {"host", "device"}:
        parser.error("--feeds takes host and/or device")
    args.steps = args.steps or (2 if args.quick else 30)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.warmup_steps = args.warmup_steps or (1 if args.quick else 10)
    return args


def configure_environment(device):
    """Before Keras, JAX or torch is imported: the backend and the device."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    else:
        # JAX would otherwise take 75% of the GPU's memory up front, leaving PyTorch little.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def datasets(models, n):
    """Images per shape, float32 NHWC in [0, 1], and where they came from."""
    found = {}
    for name in models:
        shape = MODELS[name][1]
        if shape in found:
            continue
        images = mnist_images("train") if shape == (28, 28, 1) else None
        if images is not None:
            found[shape] = (images, f"mnist (../shared/datasets/mnist, {len(images)} images)")
        else:
            rng = np.random.default_rng(0)
            found[shape] = (rng.random((n, *shape), dtype=np.float32), f"uniform noise, {n} images (no {shape[0]}x{shape[1]} set here)")
    return found


# -- genzoo on Keras ---------------------------------------------------------


def build_genzoo(family, shape, policy):
    import keras

    import zoo

    keras.mixed_precision.set_global_policy(policy)
    try:
        if family == "dcgan":
            model = zoo.DCGAN(shape, latent_dim=100, seed=0)
            model.compile()
        else:
            model = zoo.VAE(shape, latent_dim=16, seed=0)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def on_device(images):
    """The images as a tensor of the Keras backend on its default device."""
    import keras

    return keras.ops.convert_to_tensor(images)


def compiled_generator(model):
    """The model's public `generate(z)` (the DCGAN's generator, the VAE's decoder
    mean), traced once into a compiled function: under JAX, jax.jit of it with
    the weights passed in (keras.StatelessScope), as a jitted serving function
    would be."""
    import keras

    method = model.generate
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        variables = list(model.variables)

        def pure(values, z):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return method(z)

        jitted = jax.jit(pure)
        values = [v.value for v in variables]
        return lambda z: jitted(values, z)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(method)
    return method  # torch backend: eager


def wait_for(output):
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jax.block_until_ready(output)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    else:
        keras.ops.convert_to_numpy(output[:1])


def run_genzoo(args, data, record):
    import keras

    for name in args.models:
        family, shape = MODELS[name]
        images = data[shape][0]
        for policy in POLICIES:
            model = build_genzoo(family, shape, policy)
            for batch in args.batch_sizes:
                for feed in args.feeds:
                    x = images[: args.steps * batch] if len(images) >= args.steps * batch else images
                    x = on_device(x) if feed == "device" else x
                    rate, rates = fit_windows(model, x, batch, args.warmup_steps, args.steps, args.repeats)
                    record("train", "genzoo", name, policy, batch, feed, rate, rates)
                    del x
                generate = compiled_generator(model)
                z = keras.random.normal((batch, model.latent_dim), seed=1)
                last = {}

                def call():
                    last["out"] = generate(z)

                rate, rates = windows(call, batch, args.warmup_steps, args.steps, args.repeats, lambda: wait_for(last["out"]))
                record("generate", "genzoo", name, policy, batch, "-", rate, rates)
        if family == "dcgan":
            yield name, model  # the PyTorch twin runs next, while this model's figures are fresh
        del model


# -- PyTorch -----------------------------------------------------------------


def torch_setup(args):
    try:
        import torch
    except ImportError:
        return None, "torch is not installed (pip install torch)"
    if args.device == "gpu" and not torch.cuda.is_available():
        return None, "torch sees no CUDA device"
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count())
    else:
        torch.backends.cudnn.benchmark = True
        full = args.fp32 == "full"
        torch.set_float32_matmul_precision("highest" if full else "high")
        torch.backends.cudnn.allow_tf32 = not full
    return torch, None


def run_torch(torch, args, name, images, record):
    from torch_dcgan import TorchDCGAN

    _, shape = MODELS[name]
    device = torch.device("cuda" if args.device == "gpu" else "cpu")
    # NHWC as numpy holds them: a channels_last view for the channels_last modes,
    # a contiguous NCHW copy for the others (what each mode would store).
    nhwc = torch.from_numpy(np.ascontiguousarray(images[: max(args.steps, args.warmup_steps) * max(args.batch_sizes)]))
    layouts = {True: nhwc.permute(0, 3, 1, 2), False: nhwc.permute(0, 3, 1, 2).contiguous()}
    filters = (128, 64) if shape[0] == 28 else (512, 256, 128, 64)
    counts = None
    for mode, (policy, channels_last, autocast) in TORCH_MODES.items():
        peer = TorchDCGAN(shape, 100, filters, 5, seed=0, device=device, channels_last=channels_last,
                          autocast=torch.bfloat16 if autocast else None, freeze_d_for_g=True)
        counts = peer.parameter_counts()
        host = layouts[channels_last]
        for batch in args.batch_sizes:
            for feed in args.feeds:
                source = host.to(device) if feed == "device" else host
                batches = torch_batches(torch, source, batch, device, feed)
                pending = {"next": next(batches)}

                def step():
                    real, pending["next"] = pending["next"], next(batches)
                    peer.train_step(real * 2.0 - 1.0)  # [0, 1] -> tanh's range on the device, as genzoo does

                rate, rates = windows(step, batch, args.warmup_steps, args.steps, args.repeats, peer.synchronize)
                record("train", f"PyTorch {mode}", name, policy, batch, feed, rate, rates)
                del batches, pending, source
            z = torch.randn(batch, 100, device=device)
            rate, rates = windows(lambda: peer.generate(z), batch, args.warmup_steps, args.steps, args.repeats, peer.synchronize)
            record("generate", f"PyTorch {mode}", name, policy, batch, "-", rate, rates)
        del peer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return counts


def torch_batches(torch, images, batch, device, feed):
    """Endless shuffled batches (one permutation per pass, full batches only). Host
    batches are pinned and copied one batch ahead without blocking, as a
    DataLoader(pin_memory=True) loop with non_blocking copies does; device batches
    are gathered on the device."""
    n = len(images) - len(images) % batch
    if n == 0:
        raise ValueError(f"{len(images)} images make no batch of {batch}")
    while True:
        order = torch.randperm(len(images), device=images.device)
        for i in range(0, n, batch):
            real = images[order[i : i + batch]]
            if feed == "host" and device.type == "cuda":
                real = real.pin_memory().to(device, non_blocking=True)
            yield real


def keras_parameter_counts(gan):
    def count(net):
        return int(sum(np.prod(w.shape) for w in net.trainable_weights))

    return {"generator": count(gan.generator), "discriminator": count(gan.discriminator)}


# -- report ------------------------------------------------------------------


def device_name(args):
    if args.device == "cpu":
        from _common import cpu_model

        return f"CPU: {cpu_model()}, {os.cpu_count()} cores"
    names = []
    try:
        import jax

        names.append(f"JAX: {jax.devices()[0].device_kind}")
    except Exception:  # noqa: BLE001  (reporting only)
        pass
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        names.append(f"PyTorch: {sys.modules['torch'].cuda.get_device_name(0)}")
    return "; ".join(names) or "GPU"


def jax_precision(args):
    if args.device == "cpu":
        return "n/a on the CPU"
    return "highest" if args.fp32 == "full" else "default (TF32 for float32 on NVIDIA tensor cores)"


def ratios_of(results):
    """genzoo / the best PyTorch mode at the same task, model, precision, batch, feed."""
    rows = []
    for r in results:
        if r["system"] != "genzoo":
            continue
        peers = [p for p in results if p["system"].startswith("PyTorch") and all(p[k] == r[k] for k in ("task", "model", "precision", "batch", "feed"))]
        if not peers:
            continue
        best = max(peers, key=lambda p: p["images_per_s"])
        value = r["images_per_s"] / best["images_per_s"]
        rows.append({**{k: r[k] for k in ("task", "model", "precision", "batch", "feed")}, "genzoo": r["images_per_s"],
                     "pytorch_best": best["images_per_s"], "pytorch_mode": best["system"][len("PyTorch "):],
                     "ratio": value, "met": value >= 1.0})
    return rows


def main():
    args = parse_args()
    configure_environment(args.device)
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        print(f"note: Keras runs on {backend!r}, not jax: the harness runs, but these are not the JAX figures "
              "(KERAS_BACKEND=jax for those)", flush=True)
    if args.device == "gpu" and backend == "jax":
        import jax

        if jax.default_backend() != "gpu":
            raise SystemExit(f"--device gpu: JAX sees no GPU (devices: {jax.devices()}); "
                             "pip install 'jax[cuda12]', or --device cpu for a smoke run")
        if args.fp32 == "full":
            jax.config.update("jax_default_matmul_precision", "highest")
    import zoo  # noqa: F401  (loads the models; must not load TensorFlow under JAX)

    tf_loaded = "tensorflow" in sys.modules
    if tf_loaded and backend != "tensorflow":
        print("warning: TensorFlow got imported under a non-TensorFlow backend (python -X importtime shows by what)", flush=True)
    torch, torch_missing = (None, "--no-torch") if args.no_torch else torch_setup(args)

    n = args.steps * max(args.batch_sizes)
    data = datasets(args.models, max(n, args.warmup_steps * max(args.batch_sizes)))
    for shape, (_, source) in data.items():
        print(f"data {shape}: {source}", flush=True)
    results = []

    def record(task, system, model, precision, batch, feed, rate, rates):
        results.append({"task": task, "system": system, "model": model, "precision": precision, "batch": batch,
                        "feed": feed, "images_per_s": rate, "windows": rates})
        print(f"{task:8s} {system:36s} {model:7s} {precision:14s} batch {batch:4d} {feed:6s} {rate:12,.0f} images/s", flush=True)

    parameters = {}
    for name, gan in run_genzoo(args, data, record):
        parameters[name] = {"genzoo": keras_parameter_counts(gan)}
        if torch is not None:
            parameters[name]["pytorch"] = run_torch(torch, args, name, data[MODELS[name][1]][0], record)
            same = parameters[name]["pytorch"] == parameters[name]["genzoo"]
            parameters[name]["same"] = same
            print(f"{name}: same parameter counts in both frameworks: {'yes' if same else 'NO'} {parameters[name]}", flush=True)
    if torch is None:
        print(f"PyTorch: skipped ({torch_missing})", flush=True)

    ratios = ratios_of(results)
    report = {
        "benchmark": "gpu_speed", "quick": args.quick, "keras_backend": backend, "device": device_name(args),
        "machine": machine(args.device),
        "versions": versions("keras", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "torch", "numpy"),
        "torch_build": ({"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
                        if torch is not None else None),
        "settings": {"batch_sizes": args.batch_sizes, "feeds": args.feeds, "steps_per_window": args.steps,
                     "repeats": args.repeats, "warmup_steps": args.warmup_steps,
                     "fp32": args.fp32 if args.device == "gpu" else "n/a on the CPU",
                     "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
                     "jax_default_matmul_precision": jax_precision(args),
                     "torch": ({"cudnn_benchmark": torch.backends.cudnn.benchmark, "float32_matmul_precision": torch.get_float32_matmul_precision(),
                                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "threads": torch.get_num_threads()}
                               if torch is not None else torch_missing)},
        "data": {f"{s[0]}x{s[1]}x{s[2]}": source for s, (_, source) in data.items()},
        "tensorflow_loaded": tf_loaded, "parameters": parameters,
        "results": results, "ratios": ratios, "date": time.strftime("%Y-%m-%d"),
    }
    path = write_json(report, args.out)
    print(f"wrote {path}")

    where = f"{device_name(args)}; Keras {keras.__version__} on {backend}"
    print_table(["system", "model", "precision", "batch", "feed", "images/s"],
                [[r["system"], r["model"], r["precision"], r["batch"], r["feed"], f"{r['images_per_s']:,.0f}"] for r in results if r["task"] == "train"],
                title=f"Training, images/s ({where})")
    print_table(["system", "model", "precision", "batch", "images/s"],
                [[r["system"], r["model"], r["precision"], r["batch"], f"{r['images_per_s']:,.0f}"] for r in results if r["task"] == "generate"],
                title=f"Generation, images/s ({where})")
    print_table(["task", "model", "precision", "batch", "feed", "genzoo", "best PyTorch (mode)", "ratio", ">= 1"],
                [[r["task"], r["model"], r["precision"], r["batch"], r["feed"], f"{r['genzoo']:,.0f}",
                  f"{r['pytorch_best']:,.0f} ({r['pytorch_mode']})", f"{r['ratio']:.2f}x", "yes" if r["met"] else "no"] for r in ratios],
                title=f"genzoo (Keras on {backend}) / PyTorch, same device ({where}); target >= 1.0x")


if __name__ == "__main__":
    main()
