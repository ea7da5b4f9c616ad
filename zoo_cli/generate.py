"""`zoo generate MODEL.onnx`: images from an exported generator with numpy,
Pillow and onnxruntime alone (no Keras, no TensorFlow)."""


def add_parser(subparsers):
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
    p.set_defaults(run=run)


def run(args):
    from export.runtime import OnnxGenerator
    from zoo_common import files
    from zoo_common.grid import save_grid

    if args.num < 1:
        raise ValueError(f"-n {args.num}: the number of images must be >= 1.")
    if args.ncols is not None and args.ncols < 1:
        raise ValueError(f"--ncols {args.ncols} must be >= 1.")
    files.refuse_existing(args.out, args.overwrite, flag="--overwrite")
    generator = OnnxGenerator(args.model, providers=args.providers, threads=args.threads)
    images = generator.sample(args.num, seed=args.seed, batch_size=256)
    save_grid(images, args.out, ncols=args.ncols)
    print(f"wrote {args.out}: {args.num} images of {generator.model} ({generator.precision}, seed {args.seed})")
