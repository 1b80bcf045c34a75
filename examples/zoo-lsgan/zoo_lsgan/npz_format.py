"""The ``npz`` export format: inference weights as a NumPy .npz, readable without torch.

Each tensor of `GenerativeModel.inference_state` is one array under its own name
("generator.net.0.weight", ...); the array ``__zoo__`` holds a JSON string with the model's
`ModelInfo`, the graphs' inputs and outputs, and the format version. Nothing is pickled,
so ``numpy.load(path)`` (``allow_pickle=False``) reads it safely.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.errors import UsageError, ZooError

if TYPE_CHECKING:
    from zoo.contract.model import GenerativeModel, ModelInfo

META_KEY = "__zoo__"
FORMAT = "zoo-npz"
VERSION = 1


def export(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    """Write ``out`` (.npz) and read it back; raise ZooError when it does not round-trip."""
    import torch

    from zoo.base.files import atomic_path

    arrays: dict[str, np.ndarray] = {}
    for name, tensor in model.inference_state().items():
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16
            tensor = tensor.float()
        arrays[name] = tensor.numpy()
    graphs = {
        name: {"inputs": {k: list(v.shape[1:]) for k, v in g.example.items()}, "outputs": g.outputs}
        for name, g in model.graphs().items()
    }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "info": json.loads(info.to_json()),
        "graphs": graphs,
    }
    with atomic_path(out) as tmp:
        with tmp.open("wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays, **{META_KEY: np.array(json.dumps(meta))})
        _check_round_trip(tmp, arrays)
    return [out]


def _check_round_trip(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _, loaded = read(path)
    if set(loaded) != set(arrays):
        raise ZooError(f"npz export of {path} lost arrays: {sorted(set(arrays) ^ set(loaded))}")
    for name, array in arrays.items():
        if loaded[name].dtype != array.dtype or not np.array_equal(loaded[name], array):
            raise ZooError(f"npz export: array {name!r} did not round-trip")


def read(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and the arrays of a zoo .npz file."""
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it instead
        raise UsageError(f"{path} is not a .npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path} is not a readable .npz file ({exc})") from None
    if META_KEY not in arrays:
        raise UsageError(
            f"{path} has no {META_KEY} entry: it was not written by zoo's npz exporter"
        )
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} has corrupt zoo metadata ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version", 0) > VERSION:
        raise UsageError(f"{path}: unsupported format {meta.get('format')} v{meta.get('version')}")
    return meta, arrays
