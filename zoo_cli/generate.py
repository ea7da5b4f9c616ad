"""`zoo generate MODEL.onnx`: images from an exported generator with numpy,
Pillow and onnxruntime alone (no Keras, no TensorFlow)."""

import argparse
import os

FORMATS = ("png", "npy", "folder")

_EPILOG = """\
output formats (--format; by default from -o: OUT.npy -> npy, OUT/ -> folder, anything else -> png):
  png     one PNG grid, for looking at: at most 1,024 images and 16,384 pixels a side
  npy     one NumPy array (n, H, W, C), float32 in [0, 1] (--dtype uint8: 0-255); load it
          with numpy.load(OUT, mmap_mode="r") to read it without loading it all
  folder  one PNG per image, OUT/000000.png, OUT/000001.png, ..., and OUT/genzoo-images.json

Any -n streams: images are made and written in chunks (--batch-size), so memory stays that of
one chunk; every output appears under its name only once complete (a temporary name until then).
Existing outputs are kept: without --overwrite nothing is replaced; with it, a PNG or .npy is
replaced only if genzoo wrote it (it carries genzoo's mark: a PNG text chunk, a comment in the
.npy header), never a directory, and a folder only if genzoo wrote it and it holds nothing else
(a new or empty folder needs no --overwrite)."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "generate",
        help="write images from an exported .onnx generator: a PNG grid, an .npy array or a folder (no TensorFlow)",
        description="Sample z ~ N(0, I), run the exported ONNX generator with onnxruntime, write the images.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL.onnx", help="ONNX file written by `zoo export`")
    p.add_argument("-n", "--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--label", type=int, default=None, metavar="CLASS",
                   help="a conditional model's class for every image (default: every class in turn)")
    p.add_argument("-o", "--out", required=True, help="file (png, npy) or folder to write")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="png grid (at most 1,024 images), npy array or folder of PNGs (default: from -o's name)")
    p.add_argument("--dtype", choices=("float32", "uint8"), default="float32",
                   help="npy: float32 in [0, 1] (default, as the runtime gives) or uint8 in 0-255")
    p.add_argument("--ncols", type=int, default=None, help="png: images per row (default: about sqrt(n))")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per onnxruntime call (default: ~16 MiB of output, at most 1024)")
    p.add_argument("--providers", default=None, help="onnxruntime providers: cpu (default), cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="CPU cores a batch is spread over (default: the usable cores; each onnxruntime call runs on one)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output genzoo wrote (a PNG or .npy with its mark, a folder of its images); never the user's files or a directory")
    p.set_defaults(run=run)


def output_format(out, chosen=None):
    """The format of `zoo generate -o out`: `chosen`, else from the name (.npy, a trailing slash, else png)."""
    if chosen is not None:
        return chosen
    if out.endswith(("/", os.sep)):
        return "folder"
    return "npy" if out.lower().endswith(".npy") else "png"


def _finite(chunks, model_path):
    """The chunks, checked: a generator with NaN/inf weights gives NaN images, and nothing is written from them."""
    import numpy as np

    for chunk in chunks:
        if not np.all(np.isfinite(chunk)):
            raise ValueError(f"{model_path} gives NaN/inf images (its weights are not finite: the training diverged?); "
                             "nothing was written. Export a run whose model.keras is finite.")
        yield chunk


def _refuse_a_directory(path):
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; genzoo writes a file there only in place of a file. "
                                "Give a file name instead.")


def run(args):
    from export.runtime import OnnxGenerator
    from zoo_common import files, grid

    if args.num < 1:
        raise ValueError(f"-n {args.num}: the number of images must be >= 1.")
    if args.ncols is not None and args.ncols < 1:
        raise ValueError(f"--ncols {args.ncols} must be >= 1.")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size} must be >= 1.")
    fmt = output_format(args.out, args.format)
    out = args.out.rstrip("/" + os.sep) or args.out
    # Every refusal comes before the model is loaded, so nothing is computed for an output that cannot be written.
    if fmt == "png":
        grid.check_grid(args.num, ncols=args.ncols)
    if fmt == "folder":
        grid.check_folder(out, args.overwrite)
    else:
        _refuse_a_directory(out)
        files.refuse_existing(out, args.overwrite, flag="--overwrite", ours=grid.written_by_genzoo)
    generator = OnnxGenerator(args.model, providers=args.providers, threads=args.threads)
    chunks = _finite(generator.iter_samples(args.num, seed=args.seed, batch_size=args.batch_size, labels=args.label),
                     args.model)
    about = f"{args.num} images of {generator.model} ({generator.precision}, seed {args.seed})"
    if fmt == "png":
        import numpy as np

        grid.check_grid(args.num, generator.image_shape, args.ncols)
        grid.save_grid(np.concatenate(list(chunks)), out, ncols=args.ncols)
        print(f"wrote {out}: {about}")
    elif fmt == "npy":
        grid.write_npy(chunks, args.num, generator.image_shape, out, dtype=args.dtype)
        shape = "x".join(str(d) for d in (args.num, *generator.image_shape))
        print(f"wrote {out}: {about}, array {shape} {args.dtype}")
    else:
        grid.write_png_folder(chunks, args.num, out, overwrite=args.overwrite, about={
            "model": generator.model, "precision": generator.precision, "seed": args.seed,
            "image_shape": list(generator.image_shape), "source": os.path.abspath(args.model)})
        print(f"wrote {out}/: {about}, one PNG each")
