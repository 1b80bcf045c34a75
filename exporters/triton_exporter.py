"""A Triton Inference Server model repository (which KServe serves with ``protocolVersion:
v2``): one model per graph, ``REPO/NAME[-GRAPH]/config.pbtxt`` beside ``1/model.onnx``.

The ONNX files are zoo's own exports (exporters/onnx_exporter.py, validated in onnxruntime);
each config is read off its graph: the batch axis (axis 0, which every zoo graph leaves
dynamic) becomes ``max_batch_size`` and ``dynamic_batching``, the other axes ``dims`` (-1
where the graph leaves a side free, as CycleGAN's do), and a graph input of shape [batch]
(class labels) ``dims: [1]`` with a ``reshape`` to the scalar the graph takes. The repository
is named by ``--out`` and written as one folder, so it appears whole or not at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from zoo.contract.model import GenerativeModel, ModelInfo
from zoo.errors import ZooError

MAX_BATCH = 256
QUEUE_DELAY_US = 5000
DATATYPES = {  # onnxruntime's element types -> Triton's
    "tensor(float)": "TYPE_FP32",
    "tensor(float16)": "TYPE_FP16",
    "tensor(double)": "TYPE_FP64",
    "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32",
    "tensor(uint8)": "TYPE_UINT8",
    "tensor(bool)": "TYPE_BOOL",
}


def tensor_config(value: Any) -> dict[str, Any]:
    """One input or output of an onnxruntime session as Triton describes it."""
    if value.type not in DATATYPES:
        raise ZooError(f"Triton export: {value.name} is {value.type}, which it cannot map")
    if not value.shape or isinstance(value.shape[0], int):
        raise ZooError(f"Triton export: {value.name} has no dynamic batch axis")
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in value.shape[1:]]
    config: dict[str, Any] = {"name": value.name, "data_type": DATATYPES[value.type]}
    if dims:
        config["dims"] = dims
    else:  # [batch] in the graph: one value per image, reshaped to the scalar it takes
        config["dims"], config["reshape"] = [1], []
    return config


def _tensor_text(config: dict[str, Any]) -> str:
    parts = [f'name: "{config["name"]}"', f"data_type: {config['data_type']}"]
    parts.append(f"dims: [ {', '.join(map(str, config['dims']))} ]")
    if "reshape" in config:
        parts.append("reshape: { shape: [ ] }")
    return "  {\n    " + "\n    ".join(parts) + "\n  }"


def config_text(name: str, session: Any) -> str:
    """config.pbtxt for the model ``name`` served from ``session``'s graph."""
    inputs = [_tensor_text(tensor_config(v)) for v in session.get_inputs()]
    outputs = [_tensor_text(tensor_config(v)) for v in session.get_outputs()]
    return "\n".join(
        [
            f'name: "{name}"',
            'backend: "onnxruntime"',
            f"max_batch_size: {MAX_BATCH}",
            "input [\n" + ",\n".join(inputs) + "\n]",
            "output [\n" + ",\n".join(outputs) + "\n]",
            f"dynamic_batching {{\n  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}",
            "instance_group [\n  {\n    count: 1\n    kind: KIND_AUTO\n  }\n]",
            "",
        ]
    )


def export(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    from zoo.exporters.onnx_exporter import export as onnx_export
    from zoo.store.exports import open_session

    name = info.name or out.name
    out.mkdir()
    work = out / ".onnx"
    files = onnx_export(model, work / "model.onnx", info)
    for file in files:
        graph = file.name.removeprefix("model.").removesuffix(".onnx")
        folder = out / (name if len(files) == 1 else f"{name}-{graph}")
        (folder / "1").mkdir(parents=True)
        target = folder / "1" / "model.onnx"
        shutil.move(file, target)
        (folder / "config.pbtxt").write_text(config_text(folder.name, open_session(target)))
    shutil.rmtree(work)
    return [out]
