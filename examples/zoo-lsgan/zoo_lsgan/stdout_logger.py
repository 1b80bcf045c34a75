"""`zoo train ... --log stdout`: every logged scalar on standard output, a line per log step
(the logger of docs/plugins.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class StdoutLogger:
    def __init__(self, run_dir: Path, config: dict[str, Any], start_step: int):
        print(f"training {config['family']} in {run_dir} from step {start_step}", flush=True)

    def log(self, step: int, values: dict[str, float]) -> None:
        print(f"step {step}", " ".join(f"{k}={v:.4g}" for k, v in values.items()), flush=True)

    def image(self, step: int, name: str, path: Path) -> None:
        print(f"step {step} {name}: {path}", flush=True)

    def close(self) -> None:
        pass
