"""Export from a `zoo train` run directory: the work behind `zoo export`.

Only `model.keras` and `config.json` of the run are read; everything is
written under `RUN_DIR/export/`:

    saved_model/        the SavedModel (serving_default, and encode for AE/VAE)
    <model>.onnx        the ONNX generator, fp32 (e.g. vae.onnx)
    <model>-fp16.onnx   the same in fp16 (with --fp16 / fp16=True)
    export.json         every artifact written: path, parity error, size, metadata
"""

import json
import os

from zoo_common import files, layout

FORMATS = ("savedmodel", "onnx")
_FORMAT_ALIASES = {"savedmodel": "savedmodel", "saved_model": "savedmodel", "onnx": "onnx"}


def parse_formats(formats):
    """"savedmodel,onnx" or ["onnx"] -> a tuple of known format names, in order, without repeats."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    parsed = []
    for name in (str(n).strip().lower() for n in names):
        if name not in _FORMAT_ALIASES:
            raise ValueError(f"format {name!r} is not supported; allowed values are 'savedmodel' and 'onnx'.")
        if _FORMAT_ALIASES[name] not in parsed:
            parsed.append(_FORMAT_ALIASES[name])
    if not parsed:
        raise ValueError("no export format given; allowed values are 'savedmodel' and 'onnx'.")
    return tuple(parsed)


def artifact_paths(run_dir, model_name, formats, fp16=False):
    """{format: path} of the artifacts `export_run` writes."""
    out = layout.path(run_dir, layout.EXPORT)
    onnx_name = f"{model_name}-fp16.onnx" if fp16 else f"{model_name}.onnx"
    where = {"savedmodel": os.path.join(out, "saved_model"), "onnx": os.path.join(out, onnx_name)}
    return {fmt: where[fmt] for fmt in formats}


def load_run(run_dir):
    """Load the trained model of a run directory -> (model, config dict; {} without config.json)."""
    import keras

    import zoo  # registers the genzoo classes with Keras before loading

    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory {run_dir} does not exist.")
    model_path = layout.path(run_dir, layout.MODEL)
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"{run_dir} has no model.keras; write one with `zoo train MODEL --out {run_dir}`.")
    config_path = layout.path(run_dir, layout.CONFIG)
    config = files.read_json(config_path, {}) if os.path.isfile(config_path) else {}
    from zoo import _io

    model = _io.load_model(model_path)
    if not isinstance(model, zoo.GenerativeModel):
        raise ValueError(f"{model_path} holds a {type(model).__name__}, not a genzoo model.")
    return model, config


def require_finite(model, model_path, consequence):
    """Raise ValueError naming `model_path` when a weight of `model` is NaN or infinite (a diverged training):
    such a model would make only NaN images, and its export would fail only later, at the parity check."""
    from zoo.callbacks import weights_are_finite

    if not weights_are_finite(model):
        raise ValueError(
            f"{model_path} has NaN/inf weights (training diverged?); {consequence}. Retrain with a lower "
            "--lr (and inputs in [0, 1]), or use a copy of the run saved before it diverged."
        )


def export_run(run_dir, formats=FORMATS, fp16=False, opset=None, overwrite=False):
    """Export the model of `run_dir` into `run_dir/export/`; returns the list of ExportResult.

    Every target path is checked before anything is written, so a refused
    export (an existing artifact without `overwrite`) writes nothing. Each
    artifact is written atomically and recorded in export.json as it lands.

    Args:
        run_dir: str. A directory written by `zoo train`.
        formats: str or sequence. "savedmodel", "onnx" or both
            ("savedmodel,onnx"). Defaults to both.
        fp16: bool. Write the ONNX file in fp16 (`<model>-fp16.onnx`) instead
            of fp32. The SavedModel is always fp32. Defaults to False.
        opset: int or None. ONNX opset. Defaults to tf2onnx's preferred one.
        overwrite: bool. Replace existing artifacts. Defaults to False.
    """
    from zoo_common import files as _files
    from export.onnx_export import check_opset, to_onnx
    from export.saved_model import to_saved_model
    from export.source import GenerativeHalf

    formats = parse_formats(formats)
    opset = check_opset(opset)  # before anything is written
    run_dir = os.fspath(run_dir)
    model, config = load_run(run_dir)
    require_finite(model, layout.path(run_dir, layout.MODEL), "nothing exported")
    half = GenerativeHalf.of(model)
    # The file names come from the model itself, never from config.json (a path read from a file is not trusted).
    model_name = half.kind
    paths = artifact_paths(run_dir, model_name, formats, fp16)
    for path in paths.values():
        _files.refuse_existing(path, overwrite, flag="--overwrite (overwrite=True)")
    dataset = config.get("dataset")
    report = os.path.join(layout.path(run_dir, layout.EXPORT), "export.json")
    results = []
    for fmt, path in paths.items():
        if fmt == "savedmodel":
            result = to_saved_model(model, path, dataset=dataset, overwrite=overwrite)
        else:
            precision = "fp16" if fp16 else "fp32"
            result = to_onnx(model, path, opset=opset, precision=precision, dataset=dataset, overwrite=overwrite)
        # Recorded as each artifact lands, so a later failure still leaves an honest report.
        _record(report, [result])
        results.append(result)
    return results


def _record(report_path, results):
    """Merge the results into export.json, keyed by artifact file name."""
    from zoo_common import files

    report = {}
    if os.path.isfile(report_path):
        try:
            with open(report_path) as f:
                report = json.load(f)
        except json.JSONDecodeError:
            report = {}
    artifacts = report.get("artifacts", {})
    for result in results:
        entry = result.to_dict()
        entry["path"] = os.path.basename(result.path)
        artifacts[os.path.basename(result.path)] = entry
    report["artifacts"] = artifacts
    files.write_json(report, report_path)
