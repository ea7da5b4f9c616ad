"""`python -m export generate|export ...`: the export layer's commands without the
`zoo` entry point, whose `import zoo` loads Keras; `python -m export generate`
runs on numpy, Pillow and onnxruntime alone."""

import sys

from export.cli import main

if __name__ == "__main__":
    sys.exit(main())
