"""CIFAR-10 figures: genzoo's default DCGAN and a Gaussian VAE trained and judged
with the CLI a user has, `zoo train` and `zoo evaluate`, as the README's
CIFAR-10 table shows them.

    python benchmarks/cifar10.py --out runs/cifar10

The data: `--data` names a genzoo dataset (`folder:DIR` with train/ and test/
class folders, or the TFDS name `cifar10`). By default the shared JPEG copy
beside the repository (`../shared/datasets/cifar10-jpeg/{train,test}.tar.gz`)
is unpacked once into OUT/data and used; without it, TFDS `cifar10` (which
downloads it).

Each run is a real `zoo` subprocess (its one line per epoch on stdout): the
DCGAN for 2 epochs and the VAE (Gaussian likelihood, bits per dimension on
dequantised test images) for 10, both with batch 64; then `zoo evaluate` on
each, which trains and caches a domain classifier on the CIFAR-10 labels and
measures domain FID/KID of 10,000 samples, the class shares, the real floor,
and the VAE's IWAE estimate (k=100 on 1,000 test images). The Inception FID is
asked for too (`--inception`); where the ImageNet weights cannot be had it is
reported as unavailable, with the reason.

Writes OUT/dcgan and OUT/vae (the run directories, eval.json in each) and
OUT/result.json; prints the table. `--take` and `--n-samples` make a smoke run.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import log, machine, versions, write_json  # noqa: E402

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg"

# (name, `zoo train` arguments, `zoo evaluate` arguments)
RUNS = [
    ("dcgan", ["dcgan", "--epochs", "2", "--batch-size", "64"], []),
    ("vae", ["vae", "--likelihood", "gaussian", "--epochs", "10", "--batch-size", "64"],
     ["--k", "100", "--n-likelihood", "1000"]),
]


def dataset(args, out):
    """The genzoo dataset spec to train on: --data, else the shared JPEGs unpacked into OUT/data, else TFDS."""
    if args.data:
        return args.data
    if not (SHARED_CIFAR / "train.tar.gz").is_file():
        log(f"no shared copy at {SHARED_CIFAR}: TFDS cifar10 (downloads it on first use)")
        return "cifar10"
    target = out / "data"
    for split in ("train", "test"):
        if (target / split).is_dir():
            continue
        log(f"unpacking {SHARED_CIFAR / f'{split}.tar.gz'} into {target}")
        partial = target / f".{split}.partial"
        partial.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED_CIFAR / f"{split}.tar.gz") as tar:
            tar.extractall(partial, filter="data")
        os.replace(partial / split, target / split)  # the folder appears whole or not at all
        partial.rmdir()
    return f"folder:{target}"


def zoo(*arguments):
    """One `zoo` command as a subprocess; its seconds. A failure stops the benchmark with the command."""
    command = [sys.executable, "-m", "zoo_cli", *arguments]
    log("$ zoo " + " ".join(arguments))
    started = time.time()
    if subprocess.run(command, check=False).returncode != 0:
        raise SystemExit(f"cifar10: `zoo {' '.join(arguments)}` failed (its error is above).")
    return time.time() - started


def run(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = dataset(args, out)
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "settings": vars(args).copy(),
              "dataset": source, "machine": {**machine("cpu"), "load_average_at_start": list(os.getloadavg())},
              "versions": versions("genzoo", "keras", "tensorflow", "numpy"), "runs": {}}
    take = ["--take", str(args.take)] if args.take else []
    cache = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    for name, train, evaluate in RUNS:
        run_dir = out / name
        train_seconds = zoo("train", *train, "--dataset", source, "--out", str(run_dir), *take)
        eval_seconds = zoo("evaluate", str(run_dir), *evaluate, "--n-samples", str(args.n_samples), "--inception",
                           *cache)
        with open(run_dir / "eval.json") as f:
            figures = json.load(f)
        result["runs"][name] = {"train": train, "evaluate": evaluate, "train_seconds": train_seconds,
                                "evaluate_seconds": eval_seconds, "load_average_at_end": list(os.getloadavg()),
                                "figures": figures}
    write_json(result, out / "result.json")
    return result


def format_result(result):
    """The markdown table of the README's CIFAR-10 section, and the classifier and Inception lines."""
    header = ("| model | epochs | train min | bits/dim, IWAE (-ELBO) | domain FID | KID | classes covered | "
              "class share min-max |")
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in result["runs"].items():
        f, epochs = r["figures"], r["train"][r["train"].index("--epochs") + 1]
        lik, q, c = f.get("likelihood"), f["sample_quality"], f["coverage"]
        bits = ""
        if lik and "iwae_nll_bits_per_dim" in lik:
            stderr = lik.get("iwae_nll_stderr_bits_per_dim") or 0.0
            bits = (f"{lik['iwae_nll_bits_per_dim']:.2f} ± {stderr:.2f} (k={lik['k']}, {lik['n_images']:,} images;"
                    f" {lik['negative_elbo_bits_per_dim']:.2f})")
        lines.append(f"| {name} | {epochs} | {r['train_seconds'] / 60:.1f} | {bits} | {q['domain_fid']:.2f} | "
                     f"{q['domain_kid']:.3f} | {c['classes_covered']}/{c['n_classes']} | "
                     f"{c['min_fraction']:.1%}-{c['max_fraction']:.1%} |")
    first = next(iter(result["runs"].values()))["figures"]
    floor = first["real_floor"]
    lines.append(f"| real floor (train vs test) | | | | {floor['domain_fid']:.2f} | {floor['domain_kid']:.4f} | | |")
    clf = first.get("classifier") or {}
    if clf.get("test_accuracy") is not None:
        lines.append(f"\nDomain classifier (trained on the CIFAR-10 labels): test accuracy {clf['test_accuracy']:.4f}.")
    inception = first.get("inception") or {}
    if inception.get("available"):
        lines.append("Inception FID: " + ", ".join(
            f"{n} {r['figures']['inception']['fid']:.2f}" for n, r in result["runs"].items()))
    else:
        lines.append(f"Inception FID: unavailable ({inception.get('reason', 'not measured')}).")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (the run directories go inside)")
    p.add_argument("--data", default=None, help="dataset spec (default: the shared JPEGs, else TFDS cifar10)")
    p.add_argument("--n-samples", type=int, default=10000, help="samples for FID/KID and the class shares")
    p.add_argument("--take", type=int, default=None, help="train on the first N images only (a smoke check)")
    p.add_argument("--cache-dir", default=None, help="domain classifier cache (default ~/.cache/genzoo)")
    return p.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = run(parse_args())
    print()
    print(format_result(result))
