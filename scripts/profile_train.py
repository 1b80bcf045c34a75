"""Where a recipe's train step spends its CPU time: torch.profiler over `zoo bench`'s timed
steps, the top operators, and the share of convolutions (forward and backward).

    python scripts/profile_train.py dcgan-mnist --steps 20 --set ema_decay=0 \\
        --set memory_format=channels_last
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from zoo.base.settings import parse_assignments
from zoo.evaluation.bench import bench_train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--rows", type=int, default=12)
    a = ap.parse_args()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = bench_train(a.model, torch.device("cpu"), a.steps, parse_assignments(a.overrides))
    ops = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ops)
    conv = sum(e.self_cpu_time_total for e in ops if "conv" in e.key)
    print(ops.table(sort_by="self_cpu_time_total", row_limit=a.rows))
    print(
        f"{a.model}: {result.images_per_s:.0f} images/s under the profiler, "
        f"{result.gflop_per_image:.3f} GFLOP per image, "
        f"{result.images_per_s * result.gflop_per_image:.1f} GFLOP/s; "
        f"convolution operators {conv / total:.1%} of the profiled CPU time"
    )


if __name__ == "__main__":
    main()
