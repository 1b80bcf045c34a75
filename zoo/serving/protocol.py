"""The open inference protocol, version 2 (KServe / Triton), REST: tensors in JSON and in the
binary tensor data extension, as tritonclient.http sends and reads them by default.

A request body is JSON, or (header ``Inference-Header-Content-Length: N``) N bytes of JSON
followed by each binary input's bytes in order, sized by its ``binary_data_size``. A
response is binary for the outputs asked with ``binary_data`` (or for all of them with the
request parameter ``binary_data_output``), JSON otherwise. Every check fails with
`BadRequest` naming what is wrong, which the server answers with a 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from zoo.serving.repository import ServedGraph, TensorSpec

NUMPY = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}
HEADER = "inference-header-content-length"


class BadRequest(ValueError):
    """A request the protocol or the graph cannot take; the message says why."""


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The request's JSON and the binary data after it."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest(f"Inference-Header-Content-Length {header_length[:20]!r} is wrong")
        size = int(header_length)
        head, rest = body[:size], body[size:]
    else:
        head, rest = body, b""
    try:
        request = json.loads(head)
    except (ValueError, RecursionError):
        raise BadRequest("the request is not valid JSON") from None
    if not isinstance(request, dict):
        raise BadRequest("the request must be a JSON object")
    return request, rest


def _count(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def decode_inputs(
    request: dict[str, Any], binary: bytes, graph: ServedGraph, max_images: int
) -> dict[str, np.ndarray]:
    """The request's input tensors, checked against the graph's names, datatypes and shapes
    (one batch size for all), and at most ``max_images`` along the batch axis."""
    given = request.get("inputs")
    if not isinstance(given, list) or not given:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    specs = {spec.name: spec for spec in graph.inputs}
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in given:
        if not isinstance(tensor, dict):
            raise BadRequest("each input must be a JSON object")
        name = tensor.get("name")
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None or not isinstance(name, str):
            raise BadRequest(
                f"{graph.name} has no input {str(name)[:40]!r}; its inputs: {', '.join(specs)}"
            )
        if name in arrays:
            raise BadRequest(f"input {name!r} is given twice")
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        if datatype != spec.datatype:
            raise BadRequest(f"input {name!r} is {spec.datatype}, not {str(datatype)[:20]}")
        if not (
            isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
        _check_shape(name, shape, spec, max_images)
        dtype = np.dtype(NUMPY[spec.datatype])
        parameters = tensor.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is not None:
            if not isinstance(size, int) or size != _count(shape) * dtype.itemsize:
                raise BadRequest(f"input {name!r}: binary_data_size does not fit its shape")
            if offset + size > len(binary):
                raise BadRequest(f"input {name!r}: the body ends before its binary data")
            array = np.frombuffer(binary[offset : offset + size], dtype).reshape(shape)
            offset += size
        else:
            array = _from_json(name, tensor.get("data"), dtype, shape)
        arrays[name] = array
    if offset != len(binary):
        raise BadRequest("the body holds more binary data than its inputs declare")
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise BadRequest(f"{graph.name} needs input(s) {', '.join(missing)}")
    batches = {a.shape[0] for a in arrays.values()}
    if len(batches) != 1:
        raise BadRequest("every input must have the same batch size (axis 0)")
    return arrays


def _check_shape(name: str, shape: list[int], spec: TensorSpec, max_images: int) -> None:
    if len(shape) != len(spec.shape):
        raise BadRequest(f"input {name!r} has {len(shape)} dimensions; the graph's: {spec.shape}")
    if shape[0] < 1 or shape[0] > max_images:
        raise BadRequest(f"input {name!r}: batch of {shape[0]}; give 1 to {max_images} images")
    for got, want in zip(shape[1:], spec.shape[1:]):
        if want != -1 and got != want:
            raise BadRequest(f"input {name!r} has shape {shape}; the graph's: {spec.shape}")
        if want == -1 and not 1 <= got <= 4096:
            raise BadRequest(f"input {name!r}: a side of {got} is out of range (1 to 4096)")


def _from_json(name: str, data: Any, dtype: np.dtype, shape: list[int]) -> np.ndarray:
    if not isinstance(data, list):
        raise BadRequest(f"input {name!r} has no 'data' (or binary_data_size)")
    try:
        array = np.asarray(data, dtype=np.float64 if dtype.kind == "f" else None)
    except (ValueError, TypeError, RecursionError):
        raise BadRequest(f"input {name!r}: data must be numbers") from None
    if array.dtype.kind not in "biuf" or (dtype.kind in "iu" and array.dtype.kind == "f"):
        raise BadRequest(f"input {name!r}: data must be {dtype.name} numbers")
    if array.size != _count(shape):
        raise BadRequest(f"input {name!r}: {array.size} values do not fill shape {shape}")
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise BadRequest(f"input {name!r}: data must be finite")
    return array.astype(dtype).reshape(shape)


def wanted_outputs(request: dict[str, Any], graph: ServedGraph) -> list[tuple[str, bool]]:
    """(output name, as binary) for the outputs the request asks for (all by default)."""
    parameters = request.get("parameters") or {}
    binary_all = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    names = [spec.name for spec in graph.outputs]
    asked = request.get("outputs")
    if asked is None:
        return [(name, binary_all) for name in names]
    if not isinstance(asked, list):
        raise BadRequest("'outputs' must be a list")
    out = []
    for entry in asked:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in names:
            raise BadRequest(f"{graph.name} has no output {str(name)[:40]!r}")
        params = entry.get("parameters") or {}
        binary = isinstance(params, dict) and params.get("binary_data") is True
        out.append((name, binary or binary_all))
    return out


def encode_response(
    graph: ServedGraph,
    request: dict[str, Any],
    outputs: dict[str, np.ndarray],
    wanted: list[tuple[str, bool]],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers."""
    datatypes = {spec.name: spec.datatype for spec in graph.outputs}
    tensors, blobs = [], []
    for name, binary in wanted:
        array = np.ascontiguousarray(outputs[name])
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": datatypes[name],
            "shape": list(array.shape),
        }
        if binary:
            blob = array.tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    head: dict[str, Any] = {"model_name": graph.name, "model_version": "1", "outputs": tensors}
    if isinstance(request.get("id"), str):
        head["id"] = request["id"]
    text = json.dumps(head).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER: str(len(text))}
    return text + b"".join(blobs), headers


def metadata(graph: ServedGraph) -> dict[str, Any]:
    """GET /v2/models/{name}."""
    return {
        "name": graph.name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [spec.to_json() for spec in graph.inputs],
        "outputs": [spec.to_json() for spec in graph.outputs],
    }
