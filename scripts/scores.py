"""Regenerate docs/scores.md: every catalogue model with a trained run, scored by `zoo eval`'s
protocol, with the sanity anchors.

    python scripts/scores.py [--runs runs/] [--out docs/scores.md] [-n 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from zoo import api
from zoo.checkpoint import latest_checkpoint
from zoo.errors import ZooError
from zoo.evaluation import DEFAULT_N, METRIC_HEADERS, Report, anchors, evaluate, format_metrics
from zoo.evaluator import load_classifier
from zoo.files import write_text


def training_budget(run: Path) -> tuple[int, float]:
    """Steps and wall seconds from a run's metrics.jsonl; the clock restarts on --resume."""
    steps, seconds, last = 0, 0.0, 0.0
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.is_file() else []
    for row in (json.loads(line) for line in lines if line.strip()):
        if "seconds" not in row:
            continue  # validation rows carry no clock
        if row["seconds"] < last:
            seconds += last
        steps, last = max(steps, int(row["step"])), float(row["seconds"])
    return steps, seconds + last


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores"


def family_metric(report: Report) -> str:
    """The capability-specific headline: class accuracy, label preservation or held-out ELBO."""
    e = report.extra
    parts = []
    if "class_accuracy" in e:
        parts.append(f"class accuracy {e['class_accuracy']:.3f}")
    if "label_preservation" in e:
        parts.append(f"label preservation {e['label_preservation']:.3f}")
    if "cycle_l1" in e:
        parts.append(f"cycle L1 {e['cycle_l1']:.3f}")
    if "val_elbo" in e:
        parts.append(f"held-out ELBO {e['val_elbo']:.1f} nats")
    return "; ".join(parts) or "-"


def markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path("docs/scores.md"))
    parser.add_argument("-n", type=int, default=DEFAULT_N)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows, skipped = [], []
    for entry in api.list_models():
        run = args.runs / entry.name
        if not latest_checkpoint(run):
            continue
        print(f"evaluating {entry.name} ...", file=sys.stderr)
        try:
            report = evaluate(run, args.n, seed=args.seed, with_anchors=False)
        except ZooError as exc:  # e.g. no suitable evaluator: listed, not fatal
            skipped.append(f"- {entry.name}: {exc}")
            continue
        steps, seconds = training_budget(run)
        rows.append(
            [
                entry.name,
                str(steps),
                f"{seconds / 60:.1f} min",
                *format_metrics(report.metrics),
                family_metric(report),
            ]
        )
    clf = load_classifier()
    reference = f"held-out split of {clf.meta['data']} ({len(clf.reference()[0])} images)"
    anchor_rows = [
        [name, *format_metrics(m)] for name, m in anchors(clf, args.n, args.seed).items()
    ]
    lines = [
        "# Scores",
        "",
        f"Train the recipes (`zoo train NAME --out {args.runs}/NAME`), then regenerate with "
        f"`python scripts/scores.py --runs {args.runs}` (`zoo eval`'s protocol per model).",
        "",
        f"Protocol: N = {args.n} samples (seed {args.seed}) against the reference set, the "
        f"{reference}, in the features of {clf.describe()}. FLD is the Frechet distance in "
        "its 84-d features (biased at small N: compare only at the same N); KID is the unbiased "
        f"cubic-kernel MMD² (mean ± std over subsets of 500); IS uses the classifier's softmax "
        "(at most 10); precision/recall and density/coverage use k = 3.",
        "",
        f"Machine: {machine()}. Training budget: steps and wall time from each run's "
        "metrics.jsonl.",
        "",
        *markdown(["model", "steps", "train time", *METRIC_HEADERS, "family-specific"], rows),
        "",
        "## Sanity anchors (same protocol, same N)",
        "",
        "Real training images are the floor; a sound metric ranks train < blurred < one class "
        "and noise.",
        "",
        *markdown(["set", *METRIC_HEADERS], anchor_rows),
    ]
    if skipped:
        lines += ["", "## Not scored", "", *skipped]
    write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out} ({len(rows)} models)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
