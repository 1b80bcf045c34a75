"""Checkpoints and weight files.

A run directory holds ``checkpoints/step-NNNNNNNN/`` folders, each written to a temporary
folder and renamed into place, so the newest complete one is always safe to resume from:
  model.safetensors  every network's weights, with the ModelInfo as metadata
  state.pt           optimiser state, step and RNG states (our own file, loaded weights_only)
Exported and pretrained weights are single safetensors files with the same metadata.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from zoo.base.files import atomic_dir, atomic_path
from zoo.base.runs import checkpoint_dirs
from zoo.contract.metadata import (
    FORMAT_KEY,
    FORMAT_VERSION,
    INFO_KEY,
    KIND_KEY,
    VERSION_KEY,
    ModelInfo,
    check_format,
)
from zoo.errors import UsageError, ZooError

HALF = (torch.float16, torch.bfloat16)


def save_weights(
    path: Path,
    tensors: dict[str, torch.Tensor],
    info: ModelInfo,
    kind: str,
    extra: dict[str, str] | None = None,
) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {
        FORMAT_KEY: str(FORMAT_VERSION),
        INFO_KEY: info.to_json(),
        VERSION_KEY: info.zoo_version,
        KIND_KEY: kind,
        **(extra or {}),
    }
    write_safetensors(path, tensors, metadata)


def write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """A safetensors file whose bytes depend only on its tensors and metadata: safetensors
    writes its JSON header in hash-map order, which changes from one process to the next, so
    zoo rewrites the header with sorted keys (the tensor offsets are the same in any order)."""
    blob = save(tensors, metadata=metadata)
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":"))
    padded = header.encode() + b" " * (-len(header.encode()) % 8)  # the format's alignment
    with atomic_path(path) as tmp:
        tmp.write_bytes(len(padded).to_bytes(8, "little") + padded + blob[8 + size :])


def read_info(path: Path) -> tuple[ModelInfo, dict[str, str]]:
    """The ModelInfo stored in a zoo safetensors file, with all its metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable safetensors file ({exc})") from None
    if INFO_KEY not in metadata:
        raise UsageError(f"{path} has no zoo metadata: it was not written by zoo")
    check_format(metadata, path)
    try:
        return ModelInfo.from_json(metadata[INFO_KEY]), metadata
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UsageError(f"{path} has corrupt zoo metadata ({exc})") from None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors; half-precision ones (pretrained weights ship in fp16) come back as
    float32, the precision models are built in."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ZooError(f"{path} is corrupt or truncated ({exc}); re-export or retrain it") from None
    return {k: v.float() if v.dtype in HALF else v for k, v in tensors.items()}


def save_checkpoint(
    run_dir: Path, model: torch.nn.Module, info: ModelInfo, state: dict[str, Any], keep: int
) -> Path:
    final = run_dir / "checkpoints" / f"step-{info.step:08d}"
    if final.exists():
        return final
    with atomic_dir(final) as tmp:
        save_weights(tmp / "model.safetensors", model.state_dict(), info, "checkpoint")
        torch.save(state, tmp / "state.pt")
    for old in checkpoint_dirs(run_dir)[: -max(keep, 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(checkpoint: Path) -> dict[str, Any]:
    try:
        return torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(f"cannot resume from {checkpoint}: state.pt is unreadable ({exc})") from None


def non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating tensor holding NaN or Inf, or None."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None
