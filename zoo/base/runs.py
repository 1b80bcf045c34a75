"""The layout of a training run on disk, readable without torch: ``checkpoints/step-NNNNNNNN/``
folders (zoo/store/checkpoint.py writes them), each with its ``model.safetensors``."""

from __future__ import annotations

from pathlib import Path


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if p.is_dir() and p.name[5:].isdigit())


def latest_checkpoint(run_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None
