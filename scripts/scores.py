"""Regenerate docs/scores.md: every catalogue model's pretrained weights, scored by
`zoo eval`'s protocol, with the sanity anchors.

    python scripts/scores.py [--out docs/scores.md] [-n 1000] [--seed 0] [--models A,B]

With --models, only those models are scored again; their rows are replaced (or added) and
the others kept as the page has them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo import api
from zoo.base.files import write_text
from zoo.errors import ZooError
from zoo.evaluation.publish import family_metric, headline
from zoo.evaluation.scores import DEFAULT_N, METRIC_HEADERS, anchors, evaluate, format_metrics
from zoo.judge.classifier import load_classifier
from zoo.store.checkpoint import read_info
from zoo.store.sources import pretrained

LATENT_BEGIN, LATENT_END = "<!-- latent-tools -->", "<!-- /latent-tools -->"


def kept_block(path: Path) -> str:
    """The latent tools' block of an existing scores page, to keep when it is rewritten."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if LATENT_BEGIN not in text or LATENT_END not in text:
        return ""
    return LATENT_BEGIN + text.split(LATENT_BEGIN, 1)[1].split(LATENT_END, 1)[0] + LATENT_END


def markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def table_rows(path: Path) -> dict[str, list[str]]:
    """The models' rows of an existing scores page, by model name."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    head = "| model | file scored |"
    if head not in text:
        return {}
    rows = {}
    for line in text.split(head, 1)[1].splitlines()[2:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def readme_table(rows: list[list[str]]) -> None:
    """The catalogue table at the top of README.md, from the same rows."""
    readme = Path("README.md")
    text = readme.read_text()
    begin, end = "<!-- catalogue-table -->", "<!-- /catalogue-table -->"
    if begin not in text:
        return
    models = {e.name: e for e in api.list_models()}
    old = {  # the README's own lines for models whose plugin is not installed here
        line.split("`")[1]: line
        for line in text.split(begin, 1)[1].split(end, 1)[0].splitlines()
        if line.startswith("| `")
    }
    table = markdown(
        ["model", "family", "FLD", "family-specific", "recorded train time", "weights"],
        [
            [
                f"`{r[0]}`",
                models[r[0]].family,
                r[4],
                r[-1],
                r[3],
                f"[card]({Path(models[r[0]].weights.file).resolve().parent.relative_to(Path.cwd())}/README.md)",
            ]
            for r in rows
            if r[0] in models
        ],
    )
    table += [old[r[0]] for r in rows if r[0] not in models and r[0] in old]
    table[2:] = sorted(table[2:])
    head, rest = text.split(begin, 1)
    write_text(readme, head + begin + "\n" + "\n".join(table) + "\n" + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/scores.md"))
    parser.add_argument("-n", type=int, default=DEFAULT_N)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", help="Score only these (comma-separated); keep the rest.")
    args = parser.parse_args(argv)
    only = set(args.models.split(",")) if args.models else None
    kept_rows = table_rows(args.out)

    rows, skipped, hardware = [], [], set()
    for entry in api.list_models():
        if entry.weights is None:
            continue
        hardware.add(entry.weights.hardware)
        if only is not None and entry.name not in only and entry.name in kept_rows:
            rows.append(kept_rows[entry.name])
            continue
        print(f"evaluating {entry.name} ...", file=sys.stderr)
        try:
            path = pretrained(entry).path
            report = evaluate(entry.name, args.n, seed=args.seed, with_anchors=False)
        except ZooError as exc:  # e.g. no suitable evaluator: listed, not fatal
            skipped.append(f"- {entry.name}: {exc}")
            continue
        info, _ = read_info(path)
        path = path.resolve()
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        rows.append(
            [
                entry.name,
                f"`{shown}` ({entry.weights.sha256[:12]})",
                f"{info.step:,}",
                f"{entry.weights.train_seconds / 60:.1f} min",
                *format_metrics(report.metrics),
                family_metric(headline(report)),
            ]
        )
    listed = {e.name for e in api.list_models()}
    # rows of plugins not installed here (lsgan-mnist) stay as the page has them
    rows += [row for name, row in kept_rows.items() if name not in listed]
    rows.sort(key=lambda row: row[0])
    clf = load_classifier()
    reference = f"held-out split of {clf.meta['data']} ({len(clf.reference()[0])} images)"
    anchor_rows = [
        [name, *format_metrics(m)] for name, m in anchors(clf, args.n, args.seed).items()
    ]
    lines = [
        "# Scores",
        "",
        "The pretrained weights that ship with zoo, each scored by `zoo eval NAME` (the "
        "protocol below), with those of installed plugins (lsgan-mnist: `zoo install "
        "./examples/zoo-lsgan`); regenerate with `python scripts/scores.py`.",
        "",
        f"Protocol: N = {args.n} samples (seed {args.seed}) against the reference set, the "
        f"{reference}, in the features of {clf.describe()}. FLD is the Frechet distance in "
        "its 84-d features (biased at small N: compare only at the same N); KID is the unbiased "
        f"cubic-kernel MMD² (mean ± std over subsets of 500); IS uses the classifier's softmax "
        "(at most 10); precision/recall and density/coverage use k = 3.",
        "",
        "Training: `zoo train NAME` with the catalogue's recipe, wall time as recorded on "
        f"{', '.join(sorted(hardware)) or 'the machine in each model card'} "
        "(weights/NAME/README.md has each model's card). Most runs shared the cores with "
        "tests or other runs, which inflates the recorded time; each card gives the time "
        "alone on the cores, from `zoo bench`.",
        "",
        *markdown(
            [
                "model",
                "file scored",
                "steps",
                "recorded train time",
                *METRIC_HEADERS,
                "family-specific",
            ],
            rows,
        ),
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
    kept = kept_block(args.out)  # scripts/latent_scores.py's tables, measured apart
    write_text(args.out, "\n".join(lines) + "\n" + (f"\n{kept}\n" if kept else ""))
    readme_table(rows)
    print(f"wrote {args.out} ({len(rows)} models)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
