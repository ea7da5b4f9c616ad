"""`zoo export RUN_DIR`: parsing and printing; the work is export.runs.export_run.

Export traces the model with TensorFlow, so this command runs Keras on the
TensorFlow backend whatever backend trained the run (`.keras` files load on
any backend).
"""

BACKEND = "tensorflow"


def add_parser(subparsers):
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
    p.set_defaults(run=run, backend=BACKEND)


def _human_size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


def run(args):
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
