"""Generation speed of a trained DCGAN generator and a VAE decoder, four ways.

For batch sizes 1, 64 and 1024 it times the same latent -> image graph through
Keras `predict`, a `tf.function` call, the exported SavedModel, and the
exported ONNX file in onnxruntime (fp32, fp16, and int8 statically quantised),
reporting images/s, p50/p99 latency per call, FLOPs per image, the achieved
GFLOP/s and its share of the machine's GEMM ceiling, measured in the same run.

    python benchmarks/generate_speed.py            # about 5 minutes on 2 cores
    python benchmarks/generate_speed.py --quick    # a smoke run
    python benchmarks/generate_speed.py --device gpu  # TF GPU + onnxruntime CUDA (onnxruntime-gpu)

Prints a table last and writes benchmarks/results/generate_speed.json.
Targets (issue 5): ONNX Runtime >= 4x the SavedModel at batch 1, and >= 90% of
the GEMM ceiling at batch 1024.
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
from export import _files  # noqa: E402  (importable once _common put the checkout on sys.path)

BATCHES = (1, 64, 1024)
GEMM_SIZES = (1024, 2048, 4096)


# -- the models ---------------------------------------------------------------------

def training_images(n):
    """MNIST training images (float32 NHWC in [0, 1]) from ../shared when present, else noise."""
    from zoo import data

    if SHARED_MNIST.is_dir():
        images, _ = data.arrays(f"idx:{SHARED_MNIST}", split="train")
        return images[:n], "mnist (../shared/datasets/mnist)"
    return np.random.default_rng(0).uniform(size=(n, 28, 28, 1)).astype("float32"), "uniform noise (MNIST not found)"


def trained_models(n_images, epochs):
    import keras

    import zoo

    images, source = training_images(n_images)
    keras.utils.set_random_seed(0)
    gan = zoo.DCGAN((28, 28, 1), latent_dim=100, seed=0)
    gan.compile()
    vae = zoo.VAE((28, 28, 1), latent_dim=16, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    timings = {}
    for name, model in (("dcgan", gan), ("vae", vae)):
        start = time.perf_counter()
        model.fit(images, epochs=epochs, batch_size=128, verbose=0)
        timings[name] = time.perf_counter() - start
    return {"dcgan": gan, "vae": vae}, {"data": source, "images": len(images), "epochs": epochs, "fit_seconds": timings}


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


def flops_per_image(network):
    """Multiply-adds x 2 of the Dense and (transposed) convolution layers, per image.

    Batch norm, activations and bias adds are left out (a few % at most here).
    """
    import keras

    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            total += flops_per_image(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, cout, cin = layer.kernel.shape
            _, h_in, w_in, _ = layer.input.shape
            total += 2 * kh * kw * cin * cout * h_in * w_in
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h_out, w_out, _ = layer.output.shape
            total += 2 * kh * kw * cin * cout * h_out * w_out
    return int(total)


# -- the exported artifacts -----------------------------------------------------------

def export_all(name, model, directory):
    """SavedModel, ONNX fp32 and fp16 through `export`, and an int8 QDQ model
    quantised statically from the fp32 file with onnxruntime's tools."""
    import export

    paths, parity = {}, {}
    saved = export.to_saved_model(model, os.path.join(directory, f"{name}_savedmodel"))
    paths["saved_model"], parity["saved_model"] = saved.path, saved.max_abs_error
    for precision in ("fp32", "fp16"):
        result = export.to_onnx(model, os.path.join(directory, f"{name}_{precision}.onnx"), precision=precision)
        paths[f"ort_{precision}"], parity[f"ort_{precision}"] = result.path, result.max_abs_error
    paths["ort_int8"] = quantize_int8(paths["ort_fp32"], os.path.join(directory, f"{name}_int8.onnx"), model.latent_dim)
    return paths, parity


def quantize_int8(fp32_path, int8_path, latent_dim):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Latents(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.batches = iter([{"z": rng.standard_normal((32, latent_dim)).astype(np.float32)} for _ in range(16)])

        def get_next(self):
            return next(self.batches, None)

    prepared = int8_path.replace(".onnx", "_prep.onnx")
    quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
    quantize_static(
        prepared, int8_path, Latents(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )
    return int8_path


def ort_session(path, device, threads=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or os.cpu_count()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "gpu" else ["CPUExecutionProvider"]
    return ort.InferenceSession(path, options, providers=providers)


def ort_runner(session, device):
    if device != "gpu":
        return lambda z: session.run(["images"], {"z": z})[0]

    def run_bound(z):
        # IOBinding: the output stays on the GPU until the one copy back.
        binding = session.io_binding()
        binding.bind_cpu_input("z", z)
        binding.bind_output("images", "cuda")
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    return run_bound


def runners(model, paths, device):
    import tensorflow as tf

    half = keras_half(model)
    latent_dim = model.latent_dim
    fn = tf.function(lambda z: half(z, training=False), input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="z")])
    serving = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    out = {
        "keras_predict": {"default": lambda z: half.predict(z, batch_size=len(z), verbose=0)},
        "tf_function": {"default": lambda z: fn(tf.constant(z)).numpy()},
        "saved_model": {"default": lambda z: serving(z=tf.constant(z))["images"].numpy()},
    }
    # onnxruntime's thread count is a deployment choice: one thread avoids the
    # pool's hand-off at batch 1, all cores win on large batches. Both are timed.
    thread_counts = sorted({1, os.cpu_count()}) if device == "cpu" else [None]
    for key in ("ort_fp32", "ort_fp16", "ort_int8"):
        out[key] = {
            f"threads={n or 'default'}": ort_runner(ort_session(paths[key], device, n), device) for n in thread_counts
        }
    return half, out


# -- the ceiling ----------------------------------------------------------------------

def gemm_ceiling(device="cpu"):
    """Best float32 GEMM rate (GFLOP/s) of numpy, TensorFlow and onnxruntime, over square sizes."""
    best, rates = 0.0, {}
    for n in GEMM_SIZES:
        rate, per_library = _gemm_rates(n, device)
        rates[n] = per_library
        best = max(best, rate)
    return best, rates


def _gemm_rates(n, device):
    import onnx
    import tensorflow as tf
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    flops = 2.0 * n**3
    rates = {}
    # A ceiling is the best the machine does, so each library is credited with its fastest call.
    rates["numpy"] = flops / min(time_calls(lambda: a @ b, min_calls=5, min_seconds=1.0)) / 1e9
    ta, tb = tf.constant(a), tf.constant(b)
    rates["tensorflow"] = flops / min(time_calls(lambda: tf.linalg.matmul(ta, tb).numpy(), min_calls=5, min_seconds=1.0)) / 1e9
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
        initializer=[numpy_helper.from_array(b, "b")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.NamedTemporaryFile(suffix=".onnx", delete=False) as f:
        onnx.save(proto, f.name)
    session = ort_session(f.name, device)
    rates["onnxruntime"] = flops / min(time_calls(lambda: session.run(["c"], {"a": a}), min_calls=5, min_seconds=1.0)) / 1e9
    os.remove(f.name)
    return max(rates.values()), rates


# -- the run ----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny training and short timings (smoke run)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--out", default=str(RESULTS / "generate_speed.json"))
    args = parser.parse_args()

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    if args.device == "gpu":
        import onnxruntime as ort

        if not tf.config.list_physical_devices("GPU") and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise SystemExit("--device gpu: neither TensorFlow nor onnxruntime sees a GPU here (install onnxruntime-gpu / a CUDA TensorFlow).")
    min_seconds = 0.3 if args.quick else 1.5

    models, training = trained_models(n_images=2048 if args.quick else 60000, epochs=1)
    ceiling, ceilings = gemm_ceiling(device=args.device)
    rows, records, parities = [], [], {}
    with tempfile.TemporaryDirectory() as directory:
        for name, model in models.items():
            probe = np.random.default_rng(2).standard_normal((64, model.latent_dim)).astype(np.float32)
            paths, parity = export_all(name, model, directory)
            half, run = runners(model, paths, args.device)
            reference = half.predict(probe, verbose=0)
            for key, variants in run.items():
                diff = np.abs(next(iter(variants.values()))(probe) - reference)
                parity[key] = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean())}
            parities[name] = {"parity_vs_keras": parity, "files_bytes": {k: _files.size_bytes(p) for k, p in paths.items()}}
            flops = flops_per_image(half)
            for batch in BATCHES:
                z = np.random.default_rng(batch).standard_normal((batch, model.latent_dim)).astype(np.float32)
                for method, variants in run.items():
                    timed = {
                        setting: time_calls(lambda: fn(z), min_calls=5 if batch == 1024 else 20, min_seconds=min_seconds)
                        for setting, fn in variants.items()
                    }
                    # Steady state: the median call, so a stray scheduler hiccup does not count.
                    setting, times = min(timed.items(), key=lambda item: median(item[1]))
                    ips = batch / median(times)
                    gflops = flops * ips / 1e9
                    record = {
                        "model": name, "batch": batch, "method": method, "setting": setting, "calls": len(times),
                        "p50_ms_by_setting": {k: 1e3 * percentile(v, 50) for k, v in timed.items()},
                        "images_per_s": ips, "p50_ms": 1e3 * percentile(times, 50), "p99_ms": 1e3 * percentile(times, 99),
                        "flops_per_image": flops, "gflops_per_s": gflops, "fraction_of_gemm_ceiling": gflops / ceiling,
                    }
                    records.append(record)
                    rows.append([name, batch, method if setting == "default" else f"{method} ({setting})", f"{ips:,.0f}", f"{record['p50_ms']:.2f}", f"{record['p99_ms']:.2f}",
                                 f"{gflops:.1f}", f"{100 * gflops / ceiling:.0f}%"])

    def best(name, batch, method):
        return next(r for r in records if (r["model"], r["batch"], r["method"]) == (name, batch, method))

    targets = {}
    for name in models:
        ort_vs_saved = best(name, 1, "ort_fp32")["images_per_s"] / best(name, 1, "saved_model")["images_per_s"]
        ort_1024 = max(
            (best(name, 1024, m) for m in ("ort_fp32", "ort_fp16", "ort_int8")
             if parities[name]["parity_vs_keras"][m]["max_abs"] <= (1e-5 if m == "ort_fp32" else 1e-2)),
            key=lambda r: r["gflops_per_s"],
        )
        targets[name] = {
            "ort_fp32_over_saved_model_batch1": ort_vs_saved, "target_ort_over_saved_model": 4.0,
            "met_ort_over_saved_model": ort_vs_saved >= 4.0,
            "best_ort_fraction_of_ceiling_batch1024": ort_1024["fraction_of_gemm_ceiling"],
            "best_ort_method_batch1024": ort_1024["method"], "target_fraction_of_ceiling": 0.9,
            "met_fraction_of_ceiling": ort_1024["fraction_of_gemm_ceiling"] >= 0.9,
        }

    report = {
        "benchmark": "generate_speed", "quick": args.quick, "machine": machine(args.device),
        "versions": versions("tensorflow", "keras", "onnxruntime", "onnx", "tf2onnx", "numpy"),
        "training": training, "gemm_ceiling_gflops": ceiling, "gemm_rates_gflops": ceilings,
        "artifacts": parities, "results": records, "targets": targets,
        "date": time.strftime("%Y-%m-%d"),
    }
    path = write_json(report, args.out)

    print(f"\nGEMM ceiling (fp32, best of numpy/TF/onnxruntime over n = {', '.join(map(str, GEMM_SIZES))}): {ceiling:.1f} GFLOP/s; "
          + "; ".join(f"n={n}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()) for n, r in ceilings.items()))
    for name in models:
        par = parities[name]["parity_vs_keras"]
        print(f"{name}: parity max-abs vs Keras: " + ", ".join(f"{k} {v['max_abs']:.1e}" for k, v in par.items()))
        t = targets[name]
        print(f"{name}: ORT fp32 / SavedModel at batch 1 = {t['ort_fp32_over_saved_model_batch1']:.1f}x (target 4x); "
              f"best ORT at batch 1024 = {100 * t['best_ort_fraction_of_ceiling_batch1024']:.0f}% of the ceiling "
              f"({t['best_ort_method_batch1024']}, target 90%)")
    print(f"wrote {path}")
    print_table(["model", "batch", "method", "images/s", "p50 ms", "p99 ms", "GFLOP/s", "of GEMM"], rows,
                title=f"Generation speed ({machine(args.device)['cpu']}, {os.cpu_count()} cores, {args.device})")


if __name__ == "__main__":
    main()
