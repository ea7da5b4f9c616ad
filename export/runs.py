"""Export from a `zoo train` run directory: the work behind `zoo export`.

Only `model.keras` and `config.json` of the run are read; everything is
written under `RUN_DIR/export/`:

    saved_model/        the SavedModel (serving_default, and encode for AE/VAE)
    <model>.onnx        the ONNX generator, fp32 (e.g. vae.onnx)
    <model>-fp16.onnx   the same in fp16 (with --fp16 / fp16=True)
    <model>-int8.onnx   int8, quantised from the fp32 file (with --int8 / int8=True), written only
                        where it keeps the samples' quality and is faster (see export.int8)
    export.json         every artifact written: path, parity error, size, metadata
"""

import json
import os

from zoo_common import files, layout
from export import int8 as _int8
from export import metadata as _metadata

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


class Int8NotOffered(ValueError):
    """`int8=True`, but the int8 file failed the gate (export.int8); `verdict` holds the figures,
    `results` what was written."""

    def __init__(self, message, verdict, results):
        super().__init__(message)
        self.verdict, self.results = verdict, results


def export_run(run_dir, formats=FORMATS, fp16=False, opset=None, overwrite=False, int8=False,
               int8_samples=None, cache_dir=None, progress=None):
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
        int8: bool. Also quantise the fp32 ONNX file to `<model>-int8.onnx`,
            kept only if its samples' domain FID is within 5% of fp32's and it
            is faster on this machine (`export.int8`); otherwise nothing is
            written for it and `Int8NotOffered` is raised after the other
            artifacts are written. Needs "onnx" in `formats` and the run's
            dataset (for the domain classifier and the test images).
            Defaults to False.
        int8_samples: int or None. Samples for the int8 FID. Defaults to
            10,000 (the rule's count).
        cache_dir: str or None. Where the domain classifier is cached
            (`zoo.classifier`). Defaults to ~/.cache/genzoo.
        progress: callable(str) or None. Told each stage of the int8 gate.
    """
    from export.onnx_export import check_opset, to_onnx
    from export.saved_model import to_saved_model
    from export.source import GenerativeHalf

    formats = parse_formats(formats)
    opset = check_opset(opset)  # before anything is written
    if int8 and ("onnx" not in formats or fp16):
        raise ValueError("int8 is quantised from the fp32 ONNX file: keep 'onnx' in the formats and drop fp16.")
    int8_samples = _int8.SAMPLES if int8_samples is None else _check_samples(int8_samples)
    run_dir = os.fspath(run_dir)
    model, config = load_run(run_dir)
    require_finite(model, layout.path(run_dir, layout.MODEL), "nothing exported")
    if int8 and not model.has_prior:
        raise ValueError(f"{run_dir} holds a {model.kind} without a prior: the int8 gate judges samples from "
                         "N(0, I), which an autoencoder's decoder was never trained on. Export it without --int8 "
                         "(or train a vae or dcgan).")
    half = GenerativeHalf.of(model)
    # The file names come from the model itself, never from config.json (a path read from a file is not trusted).
    model_name = half.kind
    paths = artifact_paths(run_dir, model_name, formats, fp16)
    int8_path = _int8.int8_path_for(paths["onnx"]) if int8 else None
    for path in list(paths.values()) + ([int8_path] if int8 else []):
        files.refuse_existing(path, overwrite, flag="--overwrite (overwrite=True)", ours=_metadata.written_by_genzoo)
    dataset = config.get("dataset")
    if int8 and not dataset:
        raise ValueError(f"{run_dir}/config.json names no dataset; the int8 gate needs the run's data for its "
                         "domain FID. Export without --int8.")
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
    if int8:
        verdict, result = _int8_export(paths["onnx"], int8_path, dataset, int8_samples, cache_dir, report, progress)
        if result is None:
            raise Int8NotOffered(f"{os.path.basename(int8_path)} not written: {verdict.describe()}. "
                                 f"{_int8.RULE}.", verdict, results)
        results.append(result)
    return results


def _check_samples(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"int8_samples={n!r} must be an integer >= 2 (the FID needs a covariance).")
    return n


def _int8_export(fp32_path, int8_path, dataset, samples, cache_dir, report, progress):
    """Quantise, judge, and keep or drop the int8 file -> (Verdict, ExportResult or None when dropped).
    The verdict goes into export.json either way."""
    from zoo import classifier as classifier_module
    from zoo import evaluate

    say = progress or (lambda message: None)
    say(f"int8 gate: loading {dataset} and its domain classifier (trained once, then cached)")
    train, test = evaluate.dataset_arrays(dataset, "train"), evaluate.dataset_arrays(dataset, "test")
    clf = classifier_module.load_or_train(dataset, train, test, cache_dir=cache_dir)
    candidate = files.temp_file_beside(int8_path, suffix=".onnx")
    try:
        say("int8 gate: quantising the fp32 file (static QDQ, calibrated on N(0, I) latents)")
        _int8.quantize(fp32_path, candidate)
        verdict = _int8.judge(fp32_path, candidate, clf, test[0], samples=samples, progress=say)
        gate = dict(verdict.to_dict(), path=os.path.basename(int8_path), classifier_test_accuracy=clf.test_accuracy)
        result = None
        if verdict.offered:
            _int8.set_gate(candidate, verdict)
            files.move_into_place(candidate, int8_path)
            result = _int8_result(int8_path)
        elif os.path.lexists(int8_path):
            # An int8 file of an earlier export (refuse_existing let only ours through, with --overwrite) was
            # quantised from the fp32 file just replaced: it no longer belongs beside it.
            files.remove(int8_path)
            gate["removed_earlier_file"] = True
        _record(report, [] if result is None else [result], int8_gate=gate,
                drop=[] if result is not None else [os.path.basename(int8_path)])
    finally:
        files.remove(candidate)
    return verdict, result


def _int8_result(path):
    from export.source import ExportResult

    meta = _metadata.read_metadata(path)
    return ExportResult(path=path, format="onnx", precision="int8", opset=meta.get("opset"),
                        max_abs_error=None, tolerance=None, size_bytes=files.size_bytes(path), metadata=meta)


def _record(report_path, results, int8_gate=None, drop=()):
    """Merge the results into export.json, keyed by artifact file name, less the artifacts named in `drop`
    (and the int8 gate's verdict)."""
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
    for name in drop:
        artifacts.pop(name, None)
    report["artifacts"] = artifacts
    if int8_gate is not None:
        report["int8_gate"] = int8_gate
    files.write_json(report, report_path)
