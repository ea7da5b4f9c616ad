"""Data-parallel scaling of genzoo's training: images/s on 1 and on N replicas, and the
scaling efficiency (rate on N / (N x rate on 1)), for TensorFlow's MirroredStrategy and
JAX's keras.distribution.DataParallel, with the global batch fixed.

    python benchmarks/scaling.py                 # 1 and 2 logical CPU devices (this machine: no GPU)
    python benchmarks/scaling.py --quick         # a smoke run
    python benchmarks/scaling.py --device gpu    # 1 and every GPU

Each configuration runs in its own process (devices are fixed when a backend starts):
`zoo train`'s model (the default VAE or DCGAN on 28x28x1 MNIST-shaped images), built
and compiled the way `zoo train --distribute` does, timed with `model.fit` itself
(`_common.fit_windows`: warm-up, then the median of timed windows). On CPU the
"replicas" are logical devices splitting the same cores, so the figure shows the
cost of the distribution machinery, not a speed-up: a 2-core machine cannot show
scaling. Writes benchmarks/results/scaling.json.
"""

import argparse
import json
import os
import subprocess
import sys

from _common import RESULTS, machine, print_table, write_json

from zoo_cli.backends import xla_flags_with_host_devices

HERE = os.path.dirname(os.path.abspath(__file__))


def child(backend, model_name, wanted, device, batch, warmup, steps, repeats):
    """One configuration, in this process; prints its JSON result on the last line."""
    import numpy as np

    if backend == "tensorflow":
        import tensorflow as tf

        if device == "cpu" and wanted > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * wanted)
    sys.path.insert(0, os.path.dirname(HERE))
    import keras

    from _common import fit_windows, mnist_images
    from zoo import replicas, training

    name = {"tensorflow": "mirrored", "jax": "data-parallel"}[backend] if wanted > 1 else None
    scope, count = replicas.distribution(name)
    assert count == wanted, (count, wanted)
    try:
        images = mnist_images("train")[: (steps + warmup) * batch]
    except (OSError, ValueError):  # no shared MNIST: the same shape, random pixels
        images = np.random.default_rng(0).random(((steps + warmup) * batch, 28, 28, 1), dtype=np.float32)
    keras.utils.set_random_seed(0)
    with scope:
        model = training.build_model(model_name, (28, 28, 1), seed=0, **(
            {"sync_batch_norm": True} if model_name == "dcgan" and name else {}))
        training.compile_model(model)
    rate, rates = fit_windows(model, images, batch, warmup, steps, repeats)
    print(json.dumps({"images_per_s": rate, "windows": rates}))


def run_child(backend, model_name, replicas, args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend == "jax" and args.device == "cpu":
        env["XLA_FLAGS"] = xla_flags_with_host_devices(env.get("XLA_FLAGS"), replicas)
    command = [sys.executable, os.path.abspath(__file__), "--child", backend, model_name, str(replicas),
               "--device", args.device, "--batch", str(args.batch), "--warmup", str(args.warmup),
               "--steps", str(args.steps), "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=HERE)
    if done.returncode != 0:
        raise SystemExit(f"scaling.py: {backend} {model_name} on {replicas} replicas failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--replicas", type=int, default=2, help="N (gpu: default every GPU)")
    parser.add_argument("--models", default="vae,dcgan")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--batch", type=int, default=256, help="global batch (default 256)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "MODEL", "REPLICAS"))
    args = parser.parse_args()
    if args.child:
        backend, model_name, replicas = args.child
        return child(backend, model_name, int(replicas), args.device, args.batch, args.warmup, args.steps, args.repeats)
    if args.quick:
        args.warmup, args.steps, args.repeats, args.batch = 2, 3, 2, 64
    rows, results = [], []
    for backend in args.backends.split(","):
        for model_name in args.models.split(","):
            rates = {}
            for replicas in (1, args.replicas):
                print(f"scaling.py: {backend} {model_name} on {replicas} replica(s) ...", file=sys.stderr, flush=True)
                rates[replicas] = run_child(backend, model_name, replicas, args)["images_per_s"]
            efficiency = rates[args.replicas] / (args.replicas * rates[1])
            rows.append([backend, model_name, f"{rates[1]:,.0f}", f"{rates[args.replicas]:,.0f}", f"{efficiency:.0%}"])
            results.append({"backend": backend, "model": model_name, "batch": args.batch, "replicas": args.replicas,
                            "images_per_s_1": rates[1], f"images_per_s_{args.replicas}": rates[args.replicas],
                            "efficiency": efficiency})
    load = os.getloadavg()
    print_table(["backend", "model", "1 replica img/s", f"{args.replicas} replicas img/s", "efficiency"], rows,
                title=f"Data-parallel training, global batch {args.batch}, {args.device} "
                      f"(load average {load[0]:.2f})")
    if not args.quick:
        write_json({"machine": machine(args.device), "load_average": load, "results": results},
                   os.path.join(RESULTS, "scaling.json"))


if __name__ == "__main__":
    main()
