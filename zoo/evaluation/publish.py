"""Publishing a trained run as a catalogue model's pretrained weights.

`publish` turns a run into ``weights/NAME/``: ``model.safetensors`` (the inference weights,
in float16 when that keeps the `zoo eval` scores, else float32), ``samples.png`` (the
preview grid from seed 0) and ``README.md`` (a model card with a YAML header, as model hubs
use). It then records the file's size, sha256 and scores in the catalogue TOML, in a
generated block of ``[models.NAME.weights]`` tables at its end, so the catalogue stays the
one home of "where do these weights come from and how good are they".

    python scripts/publish_weights.py NAME RUN [--catalogue registry.toml] [--weights weights/]
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo import api
from zoo.base.files import atomic_path, sha256_file, write_text
from zoo.contract.metadata import FORMAT_KEY, FORMAT_VERSION, INFO_KEY, KIND_KEY
from zoo.contract.model import GenerativeModel, ModelInfo
from zoo.data.images import save_samples
from zoo.data.sources import load_dataset
from zoo.evaluation.scores import DEFAULT_N, Report, evaluate
from zoo.registry.recipes import recipe_settings, resolve
from zoo.store.checkpoint import read_info, save_weights
from zoo.training.trainer import read_metrics

BLOCK = "# --- pretrained weights: written by scripts/publish_weights.py, do not edit by hand ---"
# float16 is kept when FLD moves by at most this fraction (and 0.5 absolute) from float32
FP16_TOLERANCE = 0.02


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}"
    )


def training_budget(run: Path, upto: int | None = None) -> tuple[int, float]:
    """Steps and wall seconds from a run's metrics.jsonl, up to step ``upto`` (cumulative
    across resumes; older runs restarted the clock at each resume, which the sum handles)."""
    steps, seconds, last = 0, 0.0, 0.0
    for row in read_metrics(run / "metrics.jsonl"):
        if "seconds" not in row or (upto is not None and row["step"] > upto):
            continue  # validation rows carry no clock
        if row["seconds"] < last:
            seconds += last
        steps, last = max(steps, int(row["step"])), float(row["seconds"])
    return steps, seconds + last


def headline(report: Report) -> dict[str, float]:
    """The numbers a catalogue entry records: headline metrics and the family's own."""
    keep = ("fld", "kid", "is", "precision", "recall", "density", "coverage")
    out = {k: round(float(report.metrics[k]), 4) for k in keep}
    for key in (
        "class_accuracy",
        "label_preservation",
        "label_preservation_b2a",
        "classifier_accuracy_a",
        "cycle_l1",
    ):
        if key in report.extra:
            out[key] = round(float(report.extra[key]), 4)
    if "val_elbo" in report.extra:
        out["elbo"] = round(float(report.extra["val_elbo"]), 2)
    return out


def family_metric(metrics: dict[str, float]) -> str:
    """The capability-specific headline: class accuracy, label preservation or held-out ELBO."""
    parts = []
    if "class_accuracy" in metrics:
        parts.append(f"class accuracy {metrics['class_accuracy']:.3f}")
    if "label_preservation" in metrics:
        parts.append(f"label preservation A->B {metrics['label_preservation']:.3f}")
    if "label_preservation_b2a" in metrics:
        ceiling = metrics.get("classifier_accuracy_a")
        of = f" (real A: {ceiling:.3f})" if ceiling is not None else ""
        parts.append(f"B->A {metrics['label_preservation_b2a']:.3f}{of}")
    if "cycle_l1" in metrics:
        parts.append(f"cycle L1 {metrics['cycle_l1']:.3f}")
    if "elbo" in metrics:
        parts.append(f"held-out ELBO {metrics['elbo']:.1f} nats")
    return "; ".join(parts) or "-"


def _write_weights(loaded: api.Loaded, path: Path, dtype: torch.dtype) -> None:
    """The inference weights in ``dtype`` (floating tensors only), with the run's metadata."""
    info = loaded.info
    tensors = {
        k: v.to(dtype) if v.is_floating_point() else v
        for k, v in loaded.model.inference_state().items()
    }
    _, metadata = read_info(loaded.path)
    extra = {k: v for k, v in metadata.items() if k.startswith("zoo.") and k != INFO_KEY}
    extra.pop(KIND_KEY, None)
    extra.pop(FORMAT_KEY, None)
    save_weights(path, tensors, info, "pretrained", extra)


@dataclass
class Published:
    name: str
    folder: Path
    dtype: str
    metrics: dict[str, float]
    fp32_fld: float
    sha256: str
    size: int
    steps: int
    seconds: float


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid YAML scalar
    return repr(value)


def _task(model: GenerativeModel) -> str:
    if model.domains == 2:
        return "image-to-image"
    return "class-conditional-image-generation" if model.conditional else "image-generation"


def grid_note(name: str, model: GenerativeModel) -> str:
    """What samples.png shows and the command that draws its kind of grid: the family's
    preview from seed 0, the grid `zoo train` writes to samples/."""
    if model.domains == 2:
        return (
            "The grid: held-out images of each domain above their translations (A->B, then "
            f"B->A), from seed 0. `zoo sample {name} --direction a2b` (or `b2a`) translates "
            "held-out images, or yours with `--input`."
        )
    if model.conditional:
        return (
            f"The grid: a row per class from seed 0, the kind `zoo sample {name} --label all "
            "-n 8` draws."
        )
    return f"The grid: samples from seed 0, the kind `zoo sample {name} -n 64` draws."


def model_card(
    p: Published,
    model: GenerativeModel,
    info: ModelInfo,
    family_summary: str,
    paper: str,
    source: str,
    note: str = "",
    curve: str = "",
) -> str:
    """Markdown with a YAML header (license, data, metrics), as model hubs read it;
    ``curve``, a multi-step model's quality against its sampling steps (`steps_table`)."""
    m = p.metrics
    task = _task(model)
    header = [
        "---",
        "license: apache-2.0",
        "library_name: zoo-gen",
        "tags: [generative-image-model, " + info.family + "]",
        f"datasets: [{info.data}]",
        "model-index:",
        f"  - name: {p.name}",
        "    results:",
        f"      - task: {{type: {task}}}",
        f"        dataset: {{name: {info.data}, type: {info.data}}}",
        "        metrics:",
        *(f"          - {{type: {k}, value: {_yaml_scalar(v)}}}" for k, v in m.items()),
        "---",
    ]
    settings = info.train.get("settings", {})
    precision = info.train.get("precision", "fp32")
    # where auto may pick bf16 (zoo.training.precision), the command names the precision
    pin = f" --precision {precision}" if recipe_settings(resolve(p.name))[0]["auto_bf16"] else ""
    minutes = p.seconds / 60
    card = [
        *header,
        "",
        f"# {p.name}",
        "",
        f"{family_summary}. Family `{info.family}`: {paper or 'see its module'}.",
        "",
        "![samples](samples.png)",
        "",
        grid_note(p.name, model),
        "",
        "## Use",
        "",
        "```sh",
        f"zoo sample {p.name} -n 64 --out grid.png",
        f"zoo export {p.name} --format onnx --out {p.name}.onnx",
        "```",
        "",
        "```python",
        "import zoo.api",
        "",
        f'samples = zoo.api.sample("{p.name}", n=16, seed=0).images  # [-1, 1], NCHW',
        "```",
        "",
        "## Scores",
        "",
        f"`zoo eval {p.name}` (N = {DEFAULT_N} samples, seed 0, against the 1,000 held-out "
        "digits in the features of zoo's LeNet evaluator; see docs/scores.md for the protocol "
        "and the sanity anchors):",
        "",
        "| FLD | KID | IS | precision | recall | density | coverage | family-specific |",
        "|---|---|---|---|---|---|---|---|",
        f"| {m['fld']:.2f} | {m['kid']:.4g} | {m['is']:.2f} | {m['precision']:.3f} | "
        f"{m['recall']:.3f} | {m['density']:.3f} | {m['coverage']:.3f} | {family_metric(m)} |",
        "",
        f"Stored as {p.dtype} ({p.size:,} bytes); the float32 weights scored FLD {p.fp32_fld:.2f}.",
        "",
        *(["## Sampling steps", "", curve, ""] if curve else []),
        "## Recipe",
        "",
        f"`zoo train {p.name}{pin}` with the catalogue's recipe ({source}), seed "
        f"{info.train.get('seed', 0)}, precision {precision}: "
        f"{p.steps:,} steps of batch {settings.get('batch_size', '?')} at "
        f"{info.spec.size}x{info.spec.size}.",
        "",
        "| hyperparameter | value |",
        "|---|---|",
        *(f"| `{k}` | `{json.dumps(v)}` |" for k, v in info.config.items()),
        "",
        f"Training wall time: {minutes:.1f} min on {machine()}." + (f" {note}" if note else ""),
        "",
        "## Reproduce",
        "",
        "```sh",
        f"zoo train {p.name}{pin} --out runs/{p.name}",
        f"zoo eval runs/{p.name}",
        f"python scripts/publish_weights.py {p.name} runs/{p.name}   # rewrites this folder",
        "```",
        "",
        "## File",
        "",
        f"- `model.safetensors`: sha256 `{p.sha256}`, {p.size:,} bytes",
        f"- metadata format version {FORMAT_VERSION}, zoo {info.zoo_version}",
        "",
    ]
    return "\n".join(card)


def steps_table(rows: list[dict[str, float]]) -> str:
    """A multi-step model's quality against its number of sampling steps, as Markdown: the
    rows `scripts/steps_curve.py` measures (steps, fld, precision, recall, seconds_64 and,
    for conditional models, class_accuracy)."""
    accuracy = all("class_accuracy" in r for r in rows)
    head = ["steps", "FLD", "precision", "recall", *(["class accuracy"] if accuracy else [])]
    head.append("s per 64 images")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{int(r['steps'])}", f"{r['fld']:.2f}", f"{r['precision']:.3f}"]
        cells += [f"{r['recall']:.3f}", *([f"{r['class_accuracy']:.3f}"] if accuracy else [])]
        lines.append("| " + " | ".join([*cells, f"{r['seconds_64']:.2f}"]) + " |")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def record(catalogue: Path, name: str, weights: dict[str, Any]) -> None:
    """Write ``[models.NAME.weights]`` into the catalogue's generated block, keeping others
    (under a lock: models are often published side by side)."""
    from filelock import FileLock

    with FileLock(str(catalogue.with_name(f".{catalogue.name}.lock"))):
        _record(catalogue, name, weights)


def _record(catalogue: Path, name: str, weights: dict[str, Any]) -> None:
    text = catalogue.read_text(encoding="utf-8")
    head, _, block = text.partition(BLOCK)
    tables = tomllib.loads(block).get("models", {}) if block else {}
    tables = {k: v["weights"] for k, v in tables.items()}
    tables[name] = weights
    lines = [head.rstrip("\n"), "", BLOCK]
    for model in sorted(tables):
        lines += ["", f"[models.{model}.weights]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in tables[model].items()]
    new = "\n".join(lines) + "\n"
    tomllib.loads(new)  # never write a catalogue that does not parse
    with atomic_path(catalogue) as tmp:
        tmp.write_text(new, encoding="utf-8")


def recipe_defaults(info: ModelInfo) -> ModelInfo:
    """``info`` with the sampling defaults of its catalogue recipe as the recipe stands (a
    diffusion model's number of steps, chosen from the curve measured after training). Every
    other setting must be the run's own: what is published is what `zoo train` reproduces."""
    _, config = recipe_settings(resolve(info.name))
    schema = api.get_registry().family(info.family, load=False).config
    sampling = {f.name for f in schema.fields() if f.sampling}
    trained = sorted(k for k in config if k not in sampling and config[k] != info.config.get(k))
    if trained:
        raise SystemExit(
            f"the run trained other settings than the recipe of {info.name} ({', '.join(trained)}):"
            " publish what `zoo train` reproduces"
        )
    return dataclasses.replace(info, config={**info.config, **{k: config[k] for k in sampling}})


def publish(
    name: str, run: Path, catalogue: Path, weights_root: Path, note: str = "", curve: str = ""
) -> Published:
    loaded = api.load(run, "cpu")
    if loaded.info.name != name:
        raise SystemExit(f"{run} trained {loaded.info.name!r}, not {name!r}")
    loaded = dataclasses.replace(loaded, info=recipe_defaults(loaded.info))
    info = loaded.info
    folder = weights_root / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.safetensors"
    fp32 = folder / ".fp32.safetensors"
    _write_weights(loaded, fp32, torch.float32)
    _write_weights(loaded, target, torch.float16)
    try:
        full = headline(evaluate(fp32, with_anchors=False))
        half = headline(evaluate(target, with_anchors=False))
        if abs(half["fld"] - full["fld"]) > max(FP16_TOLERANCE * full["fld"], 0.5):
            os.replace(fp32, target)
            dtype, metrics = "float32", full
        else:
            dtype, metrics = "float16", half
    finally:
        fp32.unlink(missing_ok=True)

    model = api.load(target, "cpu").model
    data = load_dataset(info.data, image_size=info.spec.size, channels=info.spec.channels)
    with torch.no_grad():
        images, nrow = model.preview(data.test, data.test_b, 0)
    save_samples(folder / "samples.png", images, nrow)

    # a checkpoint folder publishes that step of its run (the recipe's steps must say so)
    in_run = run.parent.name == "checkpoints"
    steps, seconds = training_budget(run.parent.parent if in_run else run, info.step)
    if steps != info.step:
        raise SystemExit(f"{run} is at step {info.step} but its log reaches step {steps}")
    recipe = api.get_registry().catalogue[name].train.get("steps")
    if recipe != info.step:
        raise SystemExit(
            f"the recipe of {name} trains {recipe} steps but {run} is at step {info.step}: "
            "publish what `zoo train` reproduces (set steps in the catalogue first)"
        )
    published = Published(
        name, folder, dtype, metrics, full["fld"], sha256_file(target),
        target.stat().st_size, steps, seconds,
    )  # fmt: skip
    reg = api.get_registry()
    summary = reg.catalogue[name].summary if name in reg.catalogue else info.family
    paper = reg.family(info.family, load=False).paper
    card = model_card(published, model, info, summary, paper, catalogue.name, note, curve)
    write_text(folder / "README.md", card)
    record(
        catalogue,
        name,
        {
            "file": f"{name}/model.safetensors",
            "sha256": published.sha256,
            "size": published.size,
            "train_seconds": round(seconds, 1),
            "hardware": re.sub(r", torch .*", "", machine()),
            "metrics": metrics,
            **({"note": note} if note else {}),
        },
    )
    return published
