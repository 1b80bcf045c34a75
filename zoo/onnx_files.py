"""Reading what zoo writes into exported ONNX files (metadata_props)."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.errors import UsageError
from zoo.model import ModelInfo, check_format


def onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise UsageError(f"{path} is not a readable ONNX file ({exc})") from None
    return {p.key: p.value for p in model.metadata_props}


def read_onnx_info(path: Path) -> ModelInfo:
    meta = onnx_metadata(path)
    if "zoo.info" not in meta:
        raise UsageError(f"{path} has no zoo metadata: it was not exported by zoo")
    check_format(meta, path)
    return ModelInfo.from_json(meta["zoo.info"])


def graph_files(path: Path) -> dict[str, Path]:
    """All graphs exported with ``path`` (a VAE's encoder beside its decoder, ...)."""
    graphs = json.loads(onnx_metadata(path).get("zoo.graphs", "{}"))
    files = {name: path.with_name(file) for name, file in graphs.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise UsageError(f"{path} was exported with {', '.join(missing)}, which is missing")
    return files
