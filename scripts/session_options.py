"""What onnxruntime's CPU session options give zoo's sampling graphs at batch 1 and 256.

    python scripts/session_options.py [NAME ...] [--rounds 5] [--seconds 1]

For each model (default dcgan-mnist, gan-mnist), its cached float32 export is timed under
each variant below, in alternating rounds (median of the rounds' medians): images/s at batch
256 and milliseconds at batch 1. The baseline is what `zoo serve` and `zoo sample` open
(zoo.store.exports.open_session: onnxruntime's defaults, threads from --threads or all
cores). docs/bench.md records what it printed and what zoo chose from it.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import onnxruntime as ort

import zoo.api as api
from zoo.evaluation.limits import median_time
from zoo.store.exports import self_contained

VARIANTS: dict[str, Callable[[ort.SessionOptions], None]] = {
    "default": lambda o: None,
    "1 thread": lambda o: setattr(o, "intra_op_num_threads", 1),
    "no spinning": lambda o: o.add_session_config_entry("session.intra_op.allow_spinning", "0"),
    "no memory arena": lambda o: setattr(o, "enable_cpu_mem_arena", False),
    "parallel execution": lambda o: setattr(o, "execution_mode", ort.ExecutionMode.ORT_PARALLEL),
}


def session(model: bytes, variant: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    VARIANTS[variant](options)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def feed(s: ort.InferenceSession, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for i in s.get_inputs():
        shape = [batch, *i.shape[1:]]
        float_input = "float" in i.type
        out[i.name] = (
            rng.standard_normal(shape, np.float32) if float_input else np.zeros(batch, int)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["dcgan-mnist", "gan-mnist"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    print("| model | options | img/s @256 | vs default | ms @1 | vs default |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        path = next(iter(api.onnx_files(api.load(name)).values()))
        model = self_contained(path)
        sessions = {v: session(model, v) for v in VARIANTS}
        batch = {b: feed(sessions["default"], b) for b in (256, 1)}
        results: dict[str, dict[int, list[float]]] = {v: {256: [], 1: []} for v in VARIANTS}
        for _ in range(args.rounds):
            for variant, s in sessions.items():
                for b, inputs in batch.items():
                    results[variant][b].append(
                        median_time(partial(s.run, None, inputs), args.seconds, lambda: None)
                    )
        base = {b: statistics.median(results["default"][b]) for b in (256, 1)}
        for variant in VARIANTS:
            big, one = (statistics.median(results[variant][b]) for b in (256, 1))
            print(
                f"| {name} | {variant} | {256 / big:,.0f} | {base[256] / big:.2f}x | "
                f"{one * 1e3:.3f} | {base[1] / one:.2f}x |"
            )


if __name__ == "__main__":
    main()
