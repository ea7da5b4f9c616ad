"""Choosing the Keras backend before Keras loads: `--backend` or KERAS_BACKEND."""

import importlib.util
import os
import sys

# backend -> (the package it needs, what to install)
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install 'tensorflow>=2.21,<2.22' (genzoo installs it)"),
    "jax": ("jax", "pip install jax (CPU) or 'jax[cuda12]' (NVIDIA GPU)"),
    "torch": ("torch", "pip install torch (see pytorch.org for the build of your machine)"),
}


def add_argument(parser):
    parser.add_argument(
        "--backend", choices=sorted(BACKENDS), default=None,
        help="Keras backend to run on (default: $KERAS_BACKEND, else Keras' own default, tensorflow)",
    )


def of_run(run_dir):
    """The backend a run last trained on (its config.json: the last resume's, else its own), or None."""
    from zoo_common import files, layout

    try:
        config = files.read_json(layout.path(run_dir, layout.CONFIG)) or {}
    except (OSError, ValueError):
        return None  # training reports the broken file itself
    if not isinstance(config, dict):
        return None
    resumed = [r for r in config.get("resumed") or [] if isinstance(r, dict)]
    name = (resumed[-1] if resumed else config).get("backend")
    return name if name in BACKENDS else None


def select(name):
    """Make `name` (or $KERAS_BACKEND when None) the Keras backend; returns its name.

    Raises ValueError, in one line, for an unknown or uninstalled backend, or
    when Keras was already loaded on another one."""
    source = "--backend"
    if name is None:
        name, source = os.environ.get("KERAS_BACKEND"), "KERAS_BACKEND"
        if not name:
            return None  # Keras' default (its config file, else tensorflow)
    if name not in BACKENDS:
        raise ValueError(f"{source}={name!r} is not a Keras backend genzoo runs on; use one of {', '.join(BACKENDS)}.")
    package, install = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise ValueError(f"{source}={name}: {package} is not installed here; {install}, or choose another backend.")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise ValueError(f"Keras is already running on {keras.backend.backend()!r} in this process; "
                         f"start a new process to use {name!r}.")
    os.environ["KERAS_BACKEND"] = name
    return name


HOST_DEVICE_COUNT = "--xla_force_host_platform_device_count"


def xla_flags_with_host_devices(flags, count):
    """`flags` (an XLA_FLAGS value, or None) with the CPU split into `count` logical devices for JAX:
    any earlier host device count is dropped and the new one appended; the other flags are kept.
    JAX reads XLA_FLAGS when it starts, so this must be set before Keras loads it."""
    kept = [flag for flag in (flags or "").split() if not flag.startswith(HOST_DEVICE_COUNT + "=")]
    return " ".join([*kept, f"{HOST_DEVICE_COUNT}={count}"])
