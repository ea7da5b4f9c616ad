"""The export layer's commands: `zoo export` and `zoo generate` (registered by zoo.cli).

Argument parsing only; the work is in export.runs and export.runtime. The
module imports nothing heavy: `export` loads TensorFlow inside its run
function, and `generate` never loads it (numpy, Pillow and onnxruntime only).
"""

import argparse
import sys


def _add_export(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a run's generator to SavedModel and ONNX (into RUN_DIR/export/)",
        description="Export the generative half of a `zoo train` run (AE/VAE decoder, DCGAN generator) into "
        "RUN_DIR/export/: saved_model/ and MODEL.onnx, each checked against the Keras model.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `zoo train`")
    p.add_argument(
        "--format", default="savedmodel,onnx", help="comma-separated formats: savedmodel, onnx (default: both)"
    )
    p.add_argument("--fp16", action="store_true", help="write the ONNX model in fp16 (MODEL-fp16.onnx) instead of fp32")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: tf2onnx's preferred)")
    p.add_argument("--overwrite", action="store_true", help="replace artifacts already in RUN_DIR/export/")
    p.set_defaults(run=_run_export)


def _human_size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


def _run_export(args):
    from export.runs import export_run

    results = export_run(
        args.run_dir, formats=args.format, fp16=args.fp16, opset=args.opset, overwrite=args.overwrite
    )
    for r in results:
        kind = "SavedModel" if r.format == "saved_model" else f"ONNX opset {r.opset}"
        print(
            f"wrote {r.path} ({kind}, {r.precision}, {_human_size(r.size_bytes)}; "
            f"max |{r.format} - keras| = {r.max_abs_error:.2e} <= {r.tolerance:g})"
        )


def _add_generate(subparsers):
    p = subparsers.add_parser(
        "generate",
        help="write a PNG grid of images from an exported .onnx generator (no TensorFlow)",
        description="Sample z ~ N(0, I), run the exported ONNX generator with onnxruntime, write a PNG grid.",
    )
    p.add_argument("model", metavar="MODEL.onnx", help="ONNX file written by `zoo export`")
    p.add_argument("-n", "--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("-o", "--out", required=True, help="PNG file to write")
    p.add_argument("--ncols", type=int, default=None, help="images per row (default: about sqrt(n))")
    p.add_argument("--providers", default=None, help="onnxruntime providers: cpu (default), cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads per operator")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(run=_run_generate)


def _run_generate(args):
    from export import _files
    from export.grid import save_grid
    from export.runtime import OnnxGenerator

    if args.num < 1:
        raise ValueError(f"-n {args.num}: the number of images must be >= 1.")
    if args.ncols is not None and args.ncols < 1:
        raise ValueError(f"--ncols {args.ncols} must be >= 1.")
    _files.refuse_existing(args.out, args.overwrite, flag="--overwrite")
    generator = OnnxGenerator(args.model, providers=args.providers, threads=args.threads)
    images = generator.sample(args.num, seed=args.seed, batch_size=256)
    save_grid(images, args.out, ncols=args.ncols)
    print(f"wrote {args.out}: {args.num} images of {generator.model} ({generator.precision}, seed {args.seed})")


def add_commands(subparsers):
    """Add `export` and `generate` to the `zoo` parser's subcommands."""
    _add_export(subparsers)
    _add_generate(subparsers)
    return subparsers


def main(argv=None, prog="python -m export"):
    """The same commands outside `zoo` (whose package import loads Keras): `python -m export generate ...`."""
    parser = argparse.ArgumentParser(prog=prog, description="genzoo export layer: export and generate.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"{prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
