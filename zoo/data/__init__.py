"""Every dataset source -> one batched tf.data pipeline of float32 NHWC images in [0, 1].

Sources (the `source` argument of `load` and `arrays`):

- `digits`: scikit-learn's bundled 8x8 handwritten digits (offline, 1,797 images).
- `idx:DIR`: a directory of MNIST-format IDX files (`train-images-idx3-ubyte.gz`,
  `train-labels-idx1-ubyte.gz`, `t10k-...`), gzipped or not. MNIST,
  Fashion-MNIST and KMNIST ship in this format.
- `folder:DIR`: a folder of PNG/JPEG/BMP/GIF images, searched recursively. The
  first sub-folder level names the classes (`DIR/cat/x.jpg` has label "cat");
  images directly in DIR have label -1. If DIR holds `train/` and `test/`, they
  are the splits. Unreadable or corrupt files are skipped, and a warning gives
  their count and the first path.
- any other name (or `tfds:NAME`): a TensorFlow Datasets image dataset (`mnist`,
  `fashion_mnist`, `cifar10`, `celeb_a`, ...), read from `data_dir` /
  `TFDS_DATA_DIR` / `~/tensorflow_datasets` and downloaded there if missing.

Every pipeline yields `(images, labels)`: images float32 (batch, H, W, C) in
[0, 1], labels int64 (batch,), -1 where the source has no label. The split
"test" is held-out data for every source: the source's own test split, or a
fixed fraction (`holdout`) of its training data where it has none.

The package, one job a module: `source` (what a source hands the pipeline),
`digits`, `idx`, `folder` and `tfds` (one source kind each), `shape` (image
size and channels), `pipeline` (`load` and `arrays`). TensorFlow, TFDS,
scikit-learn and Pillow are imported inside the functions that use them, so
that `import zoo.data` stays cheap.
"""

from zoo.data.digits import digits_arrays
from zoo.data.folder import IMAGE_EXTENSIONS
from zoo.data.idx import idx_arrays
from zoo.data.pipeline import arrays, load
from zoo.data.shape import DEFAULT_MIXED_SIZE, MODEL_SIZE_FACTOR
from zoo.data.source import SPLITS, UNLABELLED
# The reachability probe before a TFDS download: `tfds_source` calls it through
# this name, so that a test replaces it here (what it probes is outside the machine).
from zoo.data.tfds import _can_download  # noqa: F401

__all__ = [
    "load",
    "arrays",
    "digits_arrays",
    "idx_arrays",
    "SPLITS",
    "UNLABELLED",
    "IMAGE_EXTENSIONS",
    "DEFAULT_MIXED_SIZE",
    "MODEL_SIZE_FACTOR",
]
