"""Training throughput of every catalogue recipe: steps/s and the projected recipe wall time.

    python scripts/bench_train.py [--steps 60] [--device auto] [MODEL ...]

Trains each recipe for a few steps in a temporary directory (data loading and the first
steps excluded) and prints one row per model. It measures the steady state of the recipe's
own train step: previews and checkpoints, which the recipes write every few hundred steps,
add a few seconds per run on top.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

import zoo.api as api
from zoo.data import load_dataset
from zoo.model import ModelInfo
from zoo.settings import TrainSettings
from zoo.training import Trainer


def bench(name: str, steps: int, device: str) -> tuple[int, float]:
    recipe = api.resolve(name)
    train, config = api.recipe_settings(recipe)
    settings = TrainSettings(**train)
    data = load_dataset(recipe.data, image_size=settings.image_size, channels=settings.channels)
    info = ModelInfo(recipe.family, config, data.spec, name, recipe.data)
    dev = api.resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(api.build(info), info, data, settings, Path(tmp), dev, 0, progress=False)
        model = trainer.model
        model.total_steps = trainer.total_steps()
        model.train()
        warmup = 5
        for step in range(warmup + steps):
            if step == warmup:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            k = model.batches_per_step(step)
            model.train_step(trainer._batch(k), step)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        per_step = (time.perf_counter() - start) / steps
    return trainer.total_steps(), per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    names = args.models or [e.name for e in api.list_models()]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}"
    )
    print(f"{'model':<18}{'steps':>8}{'ms/step':>10}{'recipe min':>12}")
    for name in names:
        total, per_step = bench(name, args.steps, args.device)
        minutes = math.ceil(total * per_step / 6) / 10
        print(f"{name:<18}{total:>8}{per_step * 1000:>10.1f}{minutes:>12.1f}")


if __name__ == "__main__":
    main()
