"""The `zoo` command: every subcommand and the console entry point.

`zoo --help` and `zoo generate` import neither Keras nor TensorFlow; `train`
and `evaluate` load Keras on the backend `--backend` (or KERAS_BACKEND) names,
`export` on TensorFlow. The work itself is in `zoo` and `export`.
"""
