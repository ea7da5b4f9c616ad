"""Generation speed of four genzoo generators, every way genzoo runs them, side by side.

Generators: the default DCGAN generator at 28x28x1 (MNIST), the 28x28x1 VAE
decoder, and the default DCGAN generators at 32x32x3 and 64x64x3. For
batches 1, 64 and 1024 the same latent -> image graph runs through Keras
`predict`, a `tf.function`, the exported SavedModel, and the exported ONNX
file (`export.to_onnx`, with its graph rewrites) in onnxruntime through
`export.runtime.OnnxGenerator.generate` with its defaults (the way users run
it; fp32 also as one raw session call with 1 and with all intra-op threads,
for reference): fp32, fp16, and int8 (`export.int8.quantize`, the static QDQ quantisation
`zoo export --int8` offers where its gate passes). Reported: images/s, p50/p99 latency per call, the
useful GFLOP/s (FLOPs of the Keras layers, not of any rewritten form) and
their share of a convolution ceiling measured in the same run. The ways are
timed in interleaved rounds (each runs ~0.3 s of calls in turn, 5-8 rounds),
so a change in the shared machine's load hits them all alike.

The ceiling, per generator: the best rate (GFLOP/s) that TensorFlow
(`tf.nn.conv2d`, NHWC, oneDNN) or onnxruntime (`Conv`, NCHW; its blocked
kernels) reaches on one stride-1 "same" convolution with the kernel, input
and output channels and input size of the generator's largest layer, at
batch 256 with all cores. A square GEMM ceiling is measured too, for
reference only.

The weights are random (speed does not depend on training); batch-norm
statistics and biases are drawn away from their initial 0/1, so the graphs
hold every node a trained model's do.

    python benchmarks/generate_speed.py            # ~20 minutes on 2 cores
    python benchmarks/generate_speed.py --quick    # a smoke run (~2 minutes)
    python benchmarks/generate_speed.py --int8-fid # zoo export --int8's gate on a DCGAN trained 1 epoch on MNIST

Prints a table last and writes benchmarks/results/generate_speed.json.
Targets (issue 13): ONNX Runtime fp32 >= the SavedModel at every batch for
every generator; the best ONNX Runtime file (within its parity bar) >= 90%
of the convolution ceiling at batch 1024.
"""

import argparse
import os
import tempfile
import time

import numpy as np

from _common import (  # noqa: I001  (sets sys.path to the checkout)
    RESULTS,
    SHARED_MNIST,
    machine,
    median,
    percentile,
    print_table,
    time_calls,
    versions,
    write_json,
)

BATCHES = (1, 64, 1024)
QUICK_BATCHES = (1, 16, 64)
CEILING_BATCH = 256
GEMM_SIZE = 2048
PARITY = {"ort_fp32": 1e-5, "ort_fp16": 1e-2, "ort_int8": 1e-2}
USER_SETTING = "OnnxGenerator"
METHODS = ("keras_predict", "tf_function", "saved_model", "ort_fp32", "ort_fp16", "ort_int8")


# -- the generators ---------------------------------------------------------------------


def generators():
    """name -> (model class, constructor kwargs): the four generators of issue 13."""
    import zoo

    return {
        "dcgan28": (zoo.DCGAN, {"image_shape": (28, 28, 1), "latent_dim": 100}),
        "vae28": (zoo.VAE, {"image_shape": (28, 28, 1), "latent_dim": 16}),
        "dcgan32": (zoo.DCGAN, {"image_shape": (32, 32, 3), "latent_dim": 100}),
        "dcgan64": (zoo.DCGAN, {"image_shape": (64, 64, 3), "latent_dim": 100}),
    }


def random_model(cls, kwargs, seed=0):
    """The model with He-scaled random kernels and batch-norm statistics / biases away from 0 and 1."""
    model = cls(**kwargs, seed=seed)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape, path = tuple(variable.shape), variable.path
        if "moving_variance" in path or "gamma" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif any(part in path for part in ("moving_mean", "beta", "bias")):
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, np.sqrt(2.0 / max(1, int(np.prod(shape[:-1])))), shape)
        variable.assign(value.astype(variable.dtype))
    return model


def generative_network(model):
    import zoo

    return model.generator if isinstance(model, zoo.DCGAN) else model.decoder


def layer_costs(network):
    """[(FLOPs per image, layer description)] of the Dense and (transposed) convolution layers.

    FLOPs = 2 x multiply-adds of the layer as Keras defines it; batch norm,
    activations and bias adds are left out (a few % at most here).
    """
    import keras

    costs = []
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            costs.append((2 * layer.kernel.shape[0] * layer.kernel.shape[1], {"kind": "dense"}))
        elif isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv2D)):
            transposed = isinstance(layer, keras.layers.Conv2DTranspose)
            kh, kw = layer.kernel.shape[:2]
            cin, cout = (layer.kernel.shape[3], layer.kernel.shape[2]) if transposed else layer.kernel.shape[2:]
            _, h_in, w_in, _ = layer.input.shape
            _, h_out, w_out, _ = layer.output.shape
            positions = h_in * w_in if transposed else h_out * w_out
            costs.append((
                2 * kh * kw * cin * cout * positions,
                {"kind": "conv_transpose" if transposed else "conv", "kernel": int(kh), "cin": int(cin),
                 "cout": int(cout), "input": [int(h_in), int(w_in)]},
            ))
    return costs


def keras_half(model):
    """The latent -> [0, 1] image graph as one functional Keras model."""
    import keras

    import zoo

    z = keras.Input((model.latent_dim,), name="z")
    if isinstance(model, zoo.DCGAN):
        images = keras.layers.Rescaling(0.5, offset=0.5, name="to_unit")(model.generator(z))
    else:
        images = keras.layers.Activation("sigmoid", name="to_unit")(model.decoder(z))
    return keras.Model(z, images, name=f"{model.name}_half")


# -- the exported artifacts -----------------------------------------------------------


def export_all(name, model, directory):
    """SavedModel, ONNX fp32 and fp16 through `export`, and an int8 QDQ model quantised from the fp32 file
    (`export.int8.quantize`, as `zoo export --int8` does)."""
    import export
    from export import int8

    paths, meta = {}, {}
    saved = export.to_saved_model(model, os.path.join(directory, f"{name}_savedmodel"), allow_untrained=True)
    paths["saved_model"] = saved.path
    for precision in ("fp32", "fp16"):
        result = export.to_onnx(model, os.path.join(directory, f"{name}_{precision}.onnx"), precision=precision, allow_untrained=True)
        paths[f"ort_{precision}"] = result.path
        meta[f"ort_{precision}"] = {"export_parity": result.max_abs_error, "graph_rewrites": result.metadata["graph_rewrites"]}
    paths["ort_int8"] = int8.quantize(paths["ort_fp32"], os.path.join(directory, f"{name}_int8.onnx"))
    return paths, meta


def ort_session(path_or_bytes, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])


def runners(model, paths):
    import tensorflow as tf

    half = keras_half(model)
    spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
    fn = tf.function(lambda z: half(z, training=False), input_signature=[spec])
    serving = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    out = {
        "keras_predict": {"default": lambda z: half.predict(z, batch_size=len(z), verbose=0)},
        "tf_function": {"default": lambda z: fn(tf.constant(z)).numpy()},
        "saved_model": {"default": lambda z: serving(z=tf.constant(z))["images"].numpy()},
    }
    # ONNX Runtime is timed the way users run it: `export.runtime.OnnxGenerator`
    # with its defaults (one thread per call; a batch of 16 or more split across
    # all cores; its default chunking), so the ORT columns are that figure. For
    # reference, fp32 is also timed as one raw `InferenceSession.run` of the whole
    # batch with onnxruntime's intra-op threads = 1 and = all cores.
    from export.runtime import OnnxGenerator

    for key in ("ort_fp32", "ort_fp16", "ort_int8"):
        out[key] = {USER_SETTING: OnnxGenerator(paths[key]).generate}
        if key == "ort_fp32":
            for n in sorted({1, os.cpu_count()}):
                session = ort_session(paths[key], n)
                out[key][f"session threads={n}"] = lambda z, s=session: s.run(["images"], {"z": z})[0]
    return half, out


# -- the ceilings ----------------------------------------------------------------------


def conv_ceiling(layer, batch=CEILING_BATCH, min_seconds=1.0):
    """Best GFLOP/s of TensorFlow and onnxruntime on one stride-1 'same' convolution shaped like `layer`."""
    import tensorflow as tf
    from onnx import TensorProto, helper, numpy_helper

    k, cin, cout, (h, w) = layer["kernel"], layer["cin"], layer["cout"], layer["input"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, h, w, cin)).astype(np.float32)
    kernel = (0.05 * rng.standard_normal((k, k, cin, cout))).astype(np.float32)
    flops = 2.0 * k * k * cin * cout * h * w * batch
    rates = {}
    tx, tk = tf.constant(x), tf.constant(kernel)
    conv = tf.function(lambda a: tf.nn.conv2d(a, tk, strides=1, padding="SAME"))
    rates["tensorflow"] = flops / min(time_calls(lambda: conv(tx).numpy(), min_calls=5, min_seconds=min_seconds)) / 1e9
    pad = (k - 1) // 2
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "k"], ["y"], kernel_shape=[k, k], pads=[pad, pad, k - 1 - pad, k - 1 - pad])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, cin, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, cout, h, w])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), "k")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort_session(proto.SerializeToString(), os.cpu_count())
    nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    rates["onnxruntime"] = flops / min(time_calls(lambda: session.run(["y"], {"x": nchw}), min_calls=5, min_seconds=min_seconds)) / 1e9
    return max(rates.values()), rates


def gemm_rates(n=GEMM_SIZE, min_seconds=1.0):
    """float32 square GEMM GFLOP/s of numpy and TensorFlow (reference only)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    flops = 2.0 * n**3
    return {
        "numpy": flops / min(time_calls(lambda: a @ b, min_calls=3, min_seconds=min_seconds)) / 1e9,
        "tensorflow": flops / min(time_calls(lambda: tf.linalg.matmul(ta, tb).numpy(), min_calls=3, min_seconds=min_seconds)) / 1e9,
    }


# -- int8: offered only if users would not see the difference --------------------------------

def int8_quality(epochs=1, directory=None):
    """`zoo export --int8`'s gate (export.int8) on a DCGAN trained `epochs` on MNIST: the domain FID of
    10,000 samples of its ONNX fp32 file and of the int8 file quantised from it, on the same latents
    (zoo evaluate's classifier), and their images/s at batch 1024. Returns a dict with the verdict."""
    import keras

    import export
    import zoo
    from export import int8
    from zoo import classifier as classifier_module
    from zoo import data

    if not SHARED_MNIST.is_dir():
        raise SystemExit(f"--int8-fid needs MNIST at {SHARED_MNIST}.")
    source = f"idx:{SHARED_MNIST}"
    train, test = data.arrays(source, split="train"), data.arrays(source, split="test")
    keras.utils.set_random_seed(0)
    gan = zoo.DCGAN((28, 28, 1), latent_dim=100, seed=0)
    gan.compile_default()
    start = time.perf_counter()
    gan.fit(train[0], epochs=epochs, batch_size=128, verbose=0)
    fit_seconds = time.perf_counter() - start
    clf = classifier_module.load_or_train(source, train, test)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        fp32 = export.to_onnx(gan, os.path.join(tmp, "dcgan.onnx"), dataset=source).path
        quantised = int8.quantize(fp32, os.path.join(tmp, "dcgan-int8.onnx"))
        verdict = int8.judge(fp32, quantised, clf, test[0], progress=lambda message: print(message, flush=True))
    return dict(verdict.to_dict(), model="DCGAN 28x28x1, MNIST", epochs=epochs, fit_seconds=fit_seconds,
                classifier_test_accuracy=clf.test_accuracy)


# -- the run ----------------------------------------------------------------------------


def timed_side_by_side(fns, batch, quick):
    """Per-call seconds of each of `fns` (name -> callable), measured in interleaved rounds.

    The machine is shared, so its load drifts; in each round every callable
    runs a block of about `BLOCK_SECONDS` of calls in turn, so a busy minute
    slows all of them alike and the ratios stay fair. Warm-up calls first.
    """
    block_seconds = 0.1 if quick else 0.3
    rounds = 3 if quick else (5 if batch >= 1024 else 8)
    blocks = {}
    for name, fn in fns.items():
        fn()
        start = time.perf_counter()
        fn()
        blocks[name] = max(1, int(block_seconds / max(time.perf_counter() - start, 1e-6)))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(blocks[name]):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


def measure(name, cls, kwargs, batches, quick, directory):
    model = random_model(cls, kwargs)
    costs = layer_costs(generative_network(model))
    flops = int(sum(c for c, _ in costs))
    largest = max((c for c in costs if c[1]["kind"] != "dense"), key=lambda c: c[0])[1]
    ceiling, ceiling_rates = conv_ceiling(largest, min_seconds=0.3 if quick else 1.5)
    paths, meta = export_all(name, model, directory)
    half, run = runners(model, paths)
    probe = np.random.default_rng(2).standard_normal((64, model.latent_dim)).astype(np.float32)
    reference = half.predict(probe, verbose=0)
    parity = {}
    for key, variants in run.items():
        diff = np.abs(next(iter(variants.values()))(probe) - reference)
        parity[key] = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean())}
    records = []
    for batch in batches:
        z = np.random.default_rng(batch).standard_normal((batch, model.latent_dim)).astype(np.float32)
        fns = {(method, setting): (lambda fn=fn: fn(z)) for method, variants in run.items() for setting, fn in variants.items()}
        all_times = timed_side_by_side(fns, batch, quick)
        for method in run:
            times = {setting: t for (m, setting), t in all_times.items() if m == method}
            # Steady state: the median call, so a stray scheduler hiccup does not count.
            # ORT's figure is OnnxGenerator's (what users run), not the best raw setting.
            if USER_SETTING in times:
                setting, best = USER_SETTING, times[USER_SETTING]
            else:
                setting, best = min(times.items(), key=lambda item: median(item[1]))
            ips = batch / median(best)
            records.append({
                "model": name, "batch": batch, "method": method, "setting": setting, "calls": len(best),
                "p50_ms_by_setting": {k: 1e3 * percentile(v, 50) for k, v in times.items()},
                "images_per_s": ips, "p50_ms": 1e3 * percentile(best, 50), "p99_ms": 1e3 * percentile(best, 99),
                "gflops_per_s": flops * ips / 1e9, "fraction_of_ceiling": flops * ips / 1e9 / ceiling,
            })
            print(f"  {name} batch {batch} {method} ({setting}): {ips:,.0f} images/s", flush=True)
    return {
        "model": name, "config": {"class": cls.__name__, **{k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}},
        "flops_per_image": flops, "largest_layer": largest,
        "conv_ceiling_gflops": ceiling, "conv_ceiling_rates": ceiling_rates,
        "parity_vs_keras": parity, "onnx_export": meta, "results": records,
    }


def targets_of(run):
    def rec(batch, method):
        return next(r for r in run["results"] if (r["batch"], r["method"]) == (batch, method))

    batches = sorted({r["batch"] for r in run["results"]})
    ratios = {b: rec(b, "ort_fp32")["images_per_s"] / rec(b, "saved_model")["images_per_s"] for b in batches}
    within = [m for m in ("ort_fp32", "ort_fp16", "ort_int8") if run["parity_vs_keras"][m]["max_abs"] <= PARITY[m]]
    top = max((rec(batches[-1], m) for m in within), key=lambda r: r["images_per_s"])
    return {
        "ort_fp32_over_saved_model": ratios,
        "met_ort_at_least_saved_model": all(r >= 1.0 for r in ratios.values()),
        "largest_batch": batches[-1],
        "best_ort_method_at_largest_batch": top["method"],
        "best_ort_fraction_of_ceiling": top["fraction_of_ceiling"],
        "met_90_percent_of_ceiling": top["fraction_of_ceiling"] >= 0.9,
        "int8_over_fp32_at_largest_batch": rec(batches[-1], "ort_int8")["images_per_s"] / rec(batches[-1], "ort_fp32")["images_per_s"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batches 1/16/64, short timings (smoke run)")
    parser.add_argument("--models", default="dcgan28,vae28,dcgan32,dcgan64", help="comma-separated subset")
    parser.add_argument("--out", default=str(RESULTS / "generate_speed.json"))
    parser.add_argument("--int8-fid", action="store_true",
                        help="only the int8 quality check: train a DCGAN on ../shared MNIST, domain FID of fp32 vs int8 ONNX")
    args = parser.parse_args()

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    known = generators()
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(known)}.")
    if args.int8_fid:
        load_before = os.getloadavg()
        result = int8_quality(epochs=1)
        result.update(load_average_1_5_15={"before": load_before, "after": os.getloadavg()}, machine=machine("cpu"),
                      versions=versions("tensorflow", "keras", "onnxruntime", "onnx", "tf2onnx"), date=time.strftime("%Y-%m-%d"))
        path = write_json(result, RESULTS / "generate_int8_quality.json")
        print(f"domain FID fp32 {result['domain_fid']['fp32']:.2f}, int8 {result['domain_fid']['int8']:.2f} "
              f"({100 * result['fid_change']:+.1f}%; bar 5%); int8 / fp32 speed at batch 1024 "
              f"{result['speedup']:.2f}x; offer int8: {result['offered']}\nwrote {path}")
        return
    batches = QUICK_BATCHES if args.quick else BATCHES
    load_before = os.getloadavg()
    started = time.time()
    gemm = gemm_rates(min_seconds=0.3 if args.quick else 1.0)
    runs = []
    with tempfile.TemporaryDirectory() as directory:
        for name in names:
            cls, kwargs = known[name]
            runs.append(measure(name, cls, kwargs, batches, args.quick, directory))
    for run in runs:
        run["targets"] = targets_of(run)
    load_after = os.getloadavg()
    report = {
        "benchmark": "generate_speed", "quick": args.quick, "machine": machine("cpu"),
        "versions": versions("tensorflow", "keras", "onnxruntime", "onnx", "tf2onnx", "numpy"),
        "load_average_1_5_15": {"before": load_before, "after": load_after},
        "seconds": time.time() - started,
        "ceiling_method": (
            "per generator: best GFLOP/s of TensorFlow tf.nn.conv2d (NHWC) and onnxruntime Conv (NCHW, ORT_ENABLE_ALL), "
            f"all cores, on one stride-1 'same' convolution with the kernel, channels and input size of the generator's "
            f"largest layer, batch {CEILING_BATCH}"
        ),
        "gemm_reference_gflops": {"n": GEMM_SIZE, **gemm},
        "flops": "2 x multiply-adds of the Keras Dense/Conv2D/Conv2DTranspose layers per image (not of rewritten forms)",
        "generators": runs,
        "date": time.strftime("%Y-%m-%d"),
    }
    path = write_json(report, args.out)

    print(f"\nload average (1, 5, 15 min): before {', '.join(f'{v:.2f}' for v in load_before)}; after {', '.join(f'{v:.2f}' for v in load_after)}")
    print(f"square GEMM n={GEMM_SIZE} (reference): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gemm.items()))
    for run in runs:
        t, lay = run["targets"], run["largest_layer"]
        print(
            f"{run['model']}: {run['flops_per_image'] / 1e6:.1f} MFLOP/image; conv ceiling {run['conv_ceiling_gflops']:.0f} GFLOP/s "
            f"({lay['kernel']}x{lay['kernel']} {lay['cin']}->{lay['cout']} on {lay['input'][0]}x{lay['input'][1]}: "
            + ", ".join(f"{k} {v:.0f}" for k, v in run["conv_ceiling_rates"].items()) + "); parity max-abs vs Keras: "
            + ", ".join(f"{k} {v['max_abs']:.0e}" for k, v in run["parity_vs_keras"].items() if k.startswith("ort"))
        )
        print(
            "  ORT fp32 / SavedModel: " + ", ".join(f"batch {b} {r:.2f}x" for b, r in t["ort_fp32_over_saved_model"].items())
            + f" (target >= 1: {'met' if t['met_ort_at_least_saved_model'] else 'NOT met'}); best ORT at batch {t['largest_batch']}: "
            f"{100 * t['best_ort_fraction_of_ceiling']:.0f}% of the ceiling ({t['best_ort_method_at_largest_batch']}; target 90%: "
            f"{'met' if t['met_90_percent_of_ceiling'] else 'NOT met'}); int8 / fp32 {t['int8_over_fp32_at_largest_batch']:.2f}x"
        )
    print(f"wrote {path}")
    rows = []
    for run in runs:
        for batch in batches:
            by = {r["method"]: r for r in run["results"] if r["batch"] == batch}
            fp32 = by["ort_fp32"]
            raw = {k: v for k, v in fp32["p50_ms_by_setting"].items() if k != USER_SETTING}
            raw_setting = min(raw, key=raw.get)
            rows.append(
                [run["model"], batch, *(f"{by[m]['images_per_s']:,.0f}" for m in METHODS),
                 f"{fp32['images_per_s'] / by['saved_model']['images_per_s']:.2f}x",
                 f"{1e3 * batch / raw[raw_setting]:,.0f} ({raw_setting.split('=')[1]})",
                 f"{fp32['p50_ms']:.2f} / {fp32['p99_ms']:.2f}", f"{fp32['gflops_per_s']:.0f}", f"{100 * fp32['fraction_of_ceiling']:.0f}%"]
            )
    print_table(
        ["model", "batch", "Keras predict", "tf.function", "SavedModel", "ORT fp32", "ORT fp16", "ORT int8",
         "ORT fp32 / SavedModel", "ORT fp32 raw session (threads)", "ORT fp32 p50 / p99 ms", "ORT fp32 GFLOP/s", "of ceiling"],
        rows,
        title=f"Generation, images/s ({report['machine']['cpu']}, {os.cpu_count()} cores; load average {load_before[0]:.1f} -> {load_after[0]:.1f})",
    )


if __name__ == "__main__":
    main()
