"""Publish a trained run as a catalogue model's pretrained weights (see zoo/evaluation/publish.py).

    python scripts/publish_weights.py NAME RUN [--catalogue registry.toml] [--weights weights]

Writes weights/NAME/{model.safetensors, samples.png, README.md} and records the file's size,
sha256 and `zoo eval` scores in the catalogue. A plugin publishes into its own package, e.g.
    --catalogue examples/zoo-lsgan/zoo_lsgan/registry.toml \
    --weights examples/zoo-lsgan/zoo_lsgan/weights
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zoo.evaluation.publish import family_metric, publish, steps_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("run", type=Path)
    parser.add_argument("--catalogue", type=Path, default=Path("registry.toml"))
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--note", default="", help="A line for the card, e.g. how it was timed.")
    parser.add_argument(
        "--curve",
        type=Path,
        help="A multi-step model's JSON from scripts/steps_curve.py: a table of quality and "
        "time against sampling steps, with the paragraph --curve-note, for the card.",
    )
    parser.add_argument("--curve-note", default="")
    args = parser.parse_args(argv)
    curve = ""
    if args.curve:
        curve = steps_table(json.loads(args.curve.read_text()))
        curve = f"{args.curve_note}\n\n{curve}" if args.curve_note else curve
    p = publish(args.name, args.run, args.catalogue, args.weights, args.note, curve)
    print(
        f"{p.name}: {p.folder}/model.safetensors ({p.dtype}, {p.size:,} bytes, sha256 "
        f"{p.sha256[:16]}...): FLD {p.metrics['fld']:.2f} (float32 {p.fp32_fld:.2f}); "
        f"{family_metric(p.metrics)}; {p.steps} steps in {p.seconds / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
