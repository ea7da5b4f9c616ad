"""The `zoo` command's front door.

`zoo generate` serves an exported ONNX file with numpy, Pillow and
onnxruntime alone, so it must not import the `zoo` package (whose
`__init__` loads Keras and TensorFlow to register the models). This entry
point sends `generate` straight to the export layer and every other command
to `zoo.cli`.
"""

import sys

_RUNTIME_ONLY = ("generate",)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in _RUNTIME_ONLY:
        from export.cli import main as export_main

        return export_main(argv, prog="zoo")
    from zoo.cli import main as zoo_main

    return zoo_main(argv)


if __name__ == "__main__":
    sys.exit(main())
