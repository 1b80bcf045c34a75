"""Quality against speed for a multi-step model: `zoo eval` (N = 1,000, seed 0) and the time to
sample 64 images, at each number of sampling steps, for its model card and docs/scores.md.

    python scripts/steps_curve.py SOURCE [--steps 5,10,20,50,100] [--guidance W] [--json F]

SOURCE is a catalogue name, run or weights file. The default number of steps a recipe should
ship is the fewest within 10% of the best FLD of the curve; the script prints it. The JSON
goes into the model card: `scripts/publish_weights.py NAME RUN --curve F`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from zoo import api
from zoo.evaluation.publish import steps_table
from zoo.evaluation.scores import evaluate


def measure(
    source: str, steps: list[int], runtime: str, options: dict[str, float]
) -> list[dict[str, float]]:
    loaded = api.load(source, "cpu")
    api.sample(source, 1, loaded=loaded, runtime=runtime, options={"steps": 1})  # warm up
    rows = []
    for k in steps:
        chosen = {**options, "steps": k}
        start = time.perf_counter()
        api.sample(source, 64, loaded=loaded, runtime=runtime, options=chosen)
        seconds = time.perf_counter() - start
        report = evaluate(source, runtime=runtime, with_anchors=False, options=chosen)
        m = report.metrics
        row = {**chosen, "fld": m["fld"], "precision": m["precision"], "recall": m["recall"]}
        if "class_accuracy" in report.extra:
            row["class_accuracy"] = report.extra["class_accuracy"]
        rows.append({**row, "seconds_64": seconds})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def default_steps(rows: list[dict[str, float]]) -> int:
    """The fewest steps whose FLD is within 10% of the curve's best."""
    best = min(r["fld"] for r in rows)
    return int(min(r["steps"] for r in rows if r["fld"] <= 1.1 * best))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("--steps", default="5,10,20,50,100")
    parser.add_argument("--runtime", default="onnx", choices=("torch", "onnx"))
    parser.add_argument("--guidance", type=float, help="A conditional model's guidance scale.")
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args(argv)
    options = {} if args.guidance is None else {"guidance": args.guidance}
    rows = measure(args.source, [int(k) for k in args.steps.split(",")], args.runtime, options)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(steps_table(rows))
    print(f"\nfewest steps within 10% of the best FLD: {default_steps(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
