"""`zoo eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.cli.common import FamilyOptionsCommand, offline_option, runtime_option


def _format_extra(extra: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in extra.items():
        if isinstance(value, dict):
            parts = ", ".join(f"{k}: {v:.3f}" for k, v in value.items())
            lines.append(f"{key}: {parts}")
        else:
            lines.append(f"{key}: {value:.4f}")
    return lines


def _train_classifier(data: str | None, out: Path | None, seed: int) -> None:
    from zoo.errors import UsageError
    from zoo.judge.classifier import sidecar_path, train_classifier

    if not data or not out:
        raise UsageError("--train-classifier needs --data SOURCE and --out FILE.safetensors")
    clf = train_classifier(data, out, seed, log=lambda line: click.echo(line, err=True))
    click.echo(
        f"wrote {out} and {sidecar_path(out)}: held-out accuracy "
        f"{clf.meta['held_out_accuracy']:.4f} in {clf.meta['train_seconds']} s"
    )


@click.command("eval", cls=FamilyOptionsCommand)
@click.argument("source", required=False)
@offline_option
@click.option(
    "-n", "n", type=int, default=1000, show_default=True, help="Generated images to score."
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@runtime_option
@click.option("--device", default="cpu", show_default=True, help="Where the model samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--truncation",
    type=float,
    help="Score samples drawn with the truncation trick at PSI (families with a prior).",
)
@click.option(
    "--anchors/--no-anchors",
    default=True,
    show_default=True,
    help="Also score the sanity anchors (train, blurred, noise, one class).",
)
@click.option(
    "--classifier",
    type=click.Path(path_type=Path),
    help="Evaluation classifier (.safetensors) for data other than MNIST digits.",
)
@click.option(
    "--train-classifier",
    is_flag=True,
    help="Instead of evaluating, train a classifier on --data and write it to --out.",
)
@click.option("--data", help="Labelled data source for --train-classifier.")
@click.option("--out", type=click.Path(path_type=Path), help="Output of --train-classifier.")
def eval_cmd(
    source, n, seed, runtime, device, as_json, truncation, anchors, classifier, train_classifier,
    data, out, **options,
) -> None:  # fmt: skip
    """Score SOURCE (run directory, .safetensors or .onnx file, catalogue name) by one
    protocol: N samples against the classifier's held-out reference set, in its features.

    Metrics: FLD (Frechet distance in the LeNet classifier's features), KID, classifier
    Inception Score, precision/recall and density/coverage (k = 3); per-class accuracy for
    conditional models, held-out metrics for models that validate, label preservation and
    cycle error for two-domain translation. Same seed, same numbers. A family's sample
    options (a diffusion model's --steps, --sampler, --guidance) score those samples.
    """
    from zoo.cli.common import echo_json, table
    from zoo.errors import UsageError
    from zoo.evaluation.scores import METRIC_HEADERS, evaluate, format_metrics

    if train_classifier:
        _train_classifier(data, out, seed)
        return
    if not source:
        raise UsageError("zoo eval needs a SOURCE (or --train-classifier --data ... --out ...)")
    report = evaluate(
        source,
        n,
        seed=seed,
        runtime=runtime,
        classifier=classifier,
        with_anchors=anchors,
        device=device,
        truncation=truncation,
        options={k: v for k, v in options.items() if v is not None},
    )
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"{report.model}: {report.n} samples (seed {report.seed}, {report.runtime})")
    click.echo(f"reference: {report.reference}")
    click.echo(f"classifier: {report.classifier}\n")
    sets = {report.model: report.metrics, **{f"anchor: {k}": m for k, m in report.anchors.items()}}
    rows = [[name, str(report.n), *format_metrics(m)] for name, m in sets.items()]
    table(rows, ["set", "N", *METRIC_HEADERS])
    for line in [*_format_extra(report.extra), *report.notes]:
        click.echo(line)
