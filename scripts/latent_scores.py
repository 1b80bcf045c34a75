"""Measure the latent tools for docs/scores.md: the truncation trick's quality/diversity trade
(FLD, precision and recall against psi) and inversion of held-out digits through every model
with a prior graph, against random latents as the floor. Rewrites the page's latent-tools
block (scripts/scores.py keeps it).

    python scripts/latent_scores.py [--out docs/scores.md] [--digits 200] [--models A,B]

With --models, only those models are measured again and their rows replaced in place (after
their weights change), the rest of the block kept as it is.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from zoo import api
from zoo.base.files import write_text
from zoo.contract.imagesets import to_float
from zoo.data.sources import load_dataset
from zoo.evaluation.scores import evaluate
from zoo.judge.classifier import load_classifier

sys.path.insert(0, str(Path(__file__).parent))
from scores import LATENT_BEGIN, LATENT_END, markdown

TRUNCATED = ("dcgan-mnist", "wgan-gp-mnist", "flow-mnist")
PSIS = (0.5, 0.7, 1.0, 1.5, None)
INVERTED = ("gan-mnist", "dcgan-mnist", "cgan-mnist", "wgan-mnist", "wgan-gp-mnist",
            "pggan-mnist", "vae-mnist", "ddpm-mnist", "flow-mnist")  # fmt: skip


INVERSION_HEADERS = [
    "model", "pixel error", "feature distance", "class kept", "random: pixel error",
    "random: feature distance", "random: class kept", "seconds per digit",
]  # fmt: skip


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))  # fmt: skip
    except (OSError, StopIteration):
        name = platform.processor() or "unknown CPU"
    return f"{name}, {torch.get_num_threads()} threads"


def truncation_rows(n: int, models: tuple[str, ...]) -> list[list[str]]:
    rows = []
    for name in models:
        for psi in PSIS:
            report = evaluate(name, n, seed=0, truncation=psi, with_anchors=False)
            m = report.metrics
            rows.append([name, "none" if psi is None else f"{psi:g}", f"{m['fld']:.2f}",
                         f"{m['precision']:.3f}", f"{m['recall']:.3f}"])  # fmt: skip
            print(" | ".join(rows[-1]), file=sys.stderr)
    return rows


def inversion_rows(
    digits: int, steps: int, restarts: int, models: tuple[str, ...]
) -> list[list[str]]:
    clf = load_classifier()
    rows = []
    for name in models:
        loaded = api.load(name)
        spec = loaded.model.spec
        held_out = load_dataset(loaded.info.data, image_size=spec.size, channels=spec.channels)
        targets = to_float(held_out.test.images[:digits])
        truth = held_out.test.labels[:digits].numpy()
        start = time.perf_counter()
        found = api.invert(name, targets, steps=steps, restarts=restarts, loaded=loaded,
                           device="cpu")  # fmt: skip
        seconds = time.perf_counter() - start
        floor = api.sample(name, digits, seed=1, loaded=loaded, runtime="torch").images
        cells = [name]
        for images in (found.images, floor):
            pixels = (images - targets).pow(2).flatten(1).mean(1).mean().item()
            with torch.no_grad():
                feats = (clf.feature_map(images) - clf.feature_map(targets)).pow(2).mean(1)
            kept = (clf.predict(images) == truth).mean()
            cells += [f"{pixels:.4f}", f"{feats.mean().item():.3f}", f"{kept:.3f}"]
        cells.append(f"{seconds / digits:.2f}")
        rows.append(cells)
        print(" | ".join(cells), file=sys.stderr)
    return rows


def replace_row(text: str, row: list[str], key: int) -> str:
    """``text`` with the table row whose first ``key`` cells are ``row``'s (in a table of
    rows as wide) replaced by it."""
    head = "| " + " | ".join(row[:key]) + " |"
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines)
            if line.startswith(head) and line.count(" | ") == len(row) - 1]  # fmt: skip
    if len(hits) != 1:
        raise SystemExit(f"no single row starts {head!r}: regenerate the whole block instead")
    lines[hits[0]] = "| " + " | ".join(row) + " |"
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/scores.md"))
    parser.add_argument("-n", type=int, default=1000, help="samples per truncation score")
    parser.add_argument("--digits", type=int, default=200, help="held-out digits to invert")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--models", help="comma-separated: measure these again, keep the rest")
    args = parser.parse_args(argv)
    machine = cpu()
    wanted = set(args.models.split(",")) if args.models else None

    def chosen(models: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m for m in models if wanted is None or m in wanted)

    truncation = truncation_rows(args.n, chosen(TRUNCATED))
    inversion = inversion_rows(args.digits, args.steps, args.restarts, chosen(INVERTED))
    if wanted is not None:
        text = args.out.read_text(encoding="utf-8")
        for row in truncation:
            text = replace_row(text, row, 2)
        for row in inversion:
            text = replace_row(text, row, 1)
        write_text(args.out, text)
        print(f"replaced the rows of {', '.join(sorted(wanted))} in {args.out}", file=sys.stderr)
        return 0
    block = [
        LATENT_BEGIN,
        "## The truncation trick",
        "",
        f"`zoo eval NAME --truncation PSI` (N = {args.n}, seed 0, the protocol above): each "
        "latent coordinate is drawn from the normal truncated to [-psi, psi] (redrawn, not "
        "scaled). Lower psi trades diversity (recall) for typical images (precision); "
        "regenerate with `python scripts/latent_scores.py`.",
        "",
        *markdown(["model", "psi", "FLD", "precision", "recall"], truncation),
        "",
        "## Inversion",
        "",
        f"`zoo invert NAME` on the first {args.digits} held-out digits of each model's data "
        f"({args.steps} steps, {args.restarts} starts, pixels and classifier features; the "
        "VAE starts from its encoder; the diffusion models run their sampler backwards, with "
        "no search), against the floor of random latents (the model's own "
        "samples, seed 1). Pixel error: mean squared error in [-1, 1]; feature distance: mean "
        "squared distance in the classifier's 84-d features; class kept: the classifier reads "
        "the digit's true class in the image. Time per digit on "
        f"{machine}, {time.strftime('%Y-%m-%d')}.",
        "",
        *markdown(INVERSION_HEADERS, inversion),
        LATENT_END,
    ]
    text = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
    if LATENT_BEGIN in text and LATENT_END in text:
        head, rest = text.split(LATENT_BEGIN, 1)
        text = head + "\n".join(block) + rest.split(LATENT_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"
    write_text(args.out, text)
    print(f"wrote the latent tools' tables into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
