"""`zoo export RUN_DIR`: parsing and printing; the work is export.runs.export_run.

Export traces the model with TensorFlow, so this command runs Keras on the
TensorFlow backend whatever backend trained the run (`.keras` files load on
any backend).
"""

import sys

BACKEND = "tensorflow"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a run's generator to SavedModel and ONNX (into RUN_DIR/export/)",
        description="Export the generative half of a `zoo train` run (AE/VAE decoder, DCGAN generator) into "
        "RUN_DIR/export/: saved_model/ and MODEL.onnx, each checked against the Keras model; "
        "--web adds a static web page that samples from the ONNX file in the browser.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `zoo train`")
    p.add_argument(
        "--format", default="savedmodel,onnx", help="comma-separated formats: savedmodel, onnx (default: both)"
    )
    p.add_argument("--fp16", action="store_true", help="write the ONNX model in fp16 (MODEL-fp16.onnx) instead of fp32")
    p.add_argument(
        "--int8", action="store_true",
        help="also write MODEL-int8.onnx, quantised from the fp32 file, but only if the domain FID of its "
        "samples is within 5%% of fp32's (10,000 samples, the run's data and domain classifier) and it is "
        "faster on this machine; otherwise say why and write no int8 file (exit 2)",
    )
    p.add_argument("--int8-samples", type=int, default=None, metavar="N",
                   help="samples for the int8 gate's FID (default: 10000, the rule's count)")
    p.add_argument("--cache-dir", default=None,
                   help="where the int8 gate's domain classifier is cached, as for zoo evaluate (default ~/.cache/genzoo)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: tf2onnx's preferred)")
    p.add_argument("--overwrite", action="store_true", help="replace artifacts already in RUN_DIR/export/")
    web = p.add_argument_group("web page", "a static page that samples in the browser (onnxruntime-web)")
    web.add_argument(
        "--web", action="store_true",
        help="also write RUN_DIR/export/web/: index.html, its script, the ONNX file and its metadata "
        "(serve it with: python -m http.server -d RUN_DIR/export/web)",
    )
    web.add_argument(
        "--offline", action="store_true",
        help="copy onnxruntime-web's files next to the page instead of loading them from jsDelivr",
    )
    web.add_argument(
        "--ort-dist", metavar="DIR", default=None,
        help="onnxruntime-web's package or dist/ folder for --offline (default: ./node_modules/onnxruntime-web)",
    )
    p.set_defaults(run=run, backend=BACKEND)


def _human_size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


def run(args):
    if (args.offline or args.ort_dist) and not args.web:
        raise ValueError("--offline and --ort-dist shape the web page; add --web.")
    if (args.int8_samples is not None or args.cache_dir is not None) and not args.int8:
        raise ValueError("--int8-samples and --cache-dir shape the int8 gate; add --int8.")
    if args.int8 and args.web:
        raise ValueError("--web takes the fp32 ONNX file; export --int8 in a second command.")
    if args.web and args.fp16:
        raise ValueError("--web takes the fp32 ONNX file; drop --fp16 (or export it in a second command).")
    page = None
    if args.web:
        from export.web import export_run_web

        results, page = export_run_web(
            args.run_dir, formats=args.format, opset=args.opset, overwrite=args.overwrite,
            offline=args.offline, ort_dist=args.ort_dist,
        )
    else:
        from export.runs import Int8NotOffered, export_run

        try:
            results = export_run(
                args.run_dir, formats=args.format, fp16=args.fp16, opset=args.opset, overwrite=args.overwrite,
                int8=args.int8, int8_samples=args.int8_samples, cache_dir=args.cache_dir, progress=_stage,
            )
        except Int8NotOffered as refused:
            _print_results(refused.results)
            raise
    _print_results(results)
    if page is not None:
        print(
            f"wrote {page['path']} (web page, {len(page['files'])} files; onnxruntime-web from {page['ort']}); "
            f"view it with: python -m http.server -d {page['path']}"
        )


def _stage(message):
    print(f"zoo export: {message}", file=sys.stderr, flush=True)


def _print_results(results):
    for r in results:
        kind = "SavedModel" if r.format == "saved_model" else f"ONNX opset {r.opset}"
        if r.precision == "int8":
            gate = r.metadata["int8_gate"]
            check = (f"domain FID {gate['domain_fid']['fp32']:.2f} -> {gate['domain_fid']['int8']:.2f} "
                     f"({100 * gate['fid_change']:+.1f}%), {gate['speedup']:.2f}x fp32's speed")
        else:
            check = f"max |{r.format} - keras| = {r.max_abs_error:.2e} <= {r.tolerance:g}"
        print(f"wrote {r.path} ({kind}, {r.precision}, {_human_size(r.size_bytes)}; {check})")
