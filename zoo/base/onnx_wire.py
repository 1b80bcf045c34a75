"""What zoo needs to know of an ONNX file before onnxruntime runs it, read from the protobuf
wire format directly: the ``onnx`` package takes most of a second to import, longer than the
whole torch-free `zoo sample` should take, and parsing a file needs only its field numbers.

`scan` walks a ModelProto's bytes once and returns its metadata_props and every tensor it
holds (initializers, sparse initializers and attribute tensors, in subgraphs and functions
too), each with where its data lives and whether its floats are finite. Field numbers are
those of onnx/onnx.proto (stable since IR version 3); a field this reader does not know is
skipped, and malformed bytes raise `WireError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

# ModelProto, GraphProto, NodeProto, AttributeProto, FunctionProto, SparseTensorProto fields
MODEL_GRAPH, MODEL_METADATA, MODEL_FUNCTIONS = 7, 14, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE = 1, 5, 15
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE, ATTR_SPARSES = 5, 6, 10, 11, 22, 23
FUNCTION_NODE = 7
SPARSE_VALUES, SPARSE_INDICES = 1, 2
# TensorProto fields, and its data types that hold floats
TENSOR_TYPE, TENSOR_FLOATS, TENSOR_INT32, TENSOR_NAME, TENSOR_RAW = 2, 4, 5, 8, 9
TENSOR_DOUBLES, TENSOR_EXTERNAL, TENSOR_LOCATION = 10, 13, 14
FLOAT, FLOAT16, DOUBLE, BFLOAT16 = 1, 10, 11, 16
EXTERNAL = 1  # TensorProto.DataLocation
MAX_DEPTH = 64  # nested subgraphs: far beyond any real model, far below the stack's limit


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass
class Tensor:
    name: str = ""
    data_type: int = 0
    external: dict[str, str] = field(default_factory=dict)
    location: int = 0
    finite: bool = True

    @property
    def is_external(self) -> bool:
        return self.location == EXTERNAL or bool(self.external)


@dataclass
class Scan:
    metadata: dict[str, str] = field(default_factory=dict)
    tensors: list[Tensor] = field(default_factory=list)


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, memoryview | int]]:
    """(field number, value) of each field: an int for varints, the bytes of the value for
    length-delimited and fixed-size fields."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise WireError("a field runs past the end of its message")
            yield number, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise WireError("truncated fixed-size field")
            yield number, data[pos : pos + size]
            pos += size
        else:
            raise WireError(f"unsupported wire type {wire}")


def _text(value: memoryview | int) -> str:
    if isinstance(value, int):
        raise WireError("a string field holds a number")
    return bytes(value).decode("utf-8", "replace")


def _entry(value: memoryview | int) -> tuple[str, str]:
    """A StringStringEntryProto: key = 1, value = 2."""
    if isinstance(value, int):
        raise WireError("an entry holds a number")
    pair = {number: _text(v) for number, v in _fields(value) if number in (1, 2)}
    return pair.get(1, ""), pair.get(2, "")


def _all_finite(data_type: int, raw: bytes, packed: list[bytes], wire: list[int]) -> bool:
    if data_type == FLOAT:
        values = np.frombuffer(raw or b"".join(packed), "<f4")
    elif data_type == DOUBLE:
        values = np.frombuffer(raw or b"".join(packed), "<f8")
    elif data_type in (FLOAT16, BFLOAT16):
        bits = np.frombuffer(raw, "<u2") if raw else np.asarray(wire, np.uint32).astype(np.uint16)
        exponent = 0x7C00 if data_type == FLOAT16 else 0x7F80
        return not bool(np.any((bits & exponent) == exponent))
    else:
        return True
    return bool(np.isfinite(values).all())


def _tensor(data: memoryview) -> Tensor:
    tensor = Tensor()
    raw, packed, halves = b"", [], []
    for number, value in _fields(data):
        if number == TENSOR_TYPE and isinstance(value, int):
            tensor.data_type = value
        elif number == TENSOR_NAME:
            tensor.name = _text(value)
        elif number == TENSOR_RAW and not isinstance(value, int):
            raw = bytes(value)
        elif number in (TENSOR_FLOATS, TENSOR_DOUBLES) and not isinstance(value, int):
            packed.append(bytes(value))  # packed (wire 2) or one fixed-size value (wire 1, 5)
        elif number == TENSOR_INT32:
            if isinstance(value, int):
                halves.append(value)
            else:  # packed varints
                pos = 0
                while pos < len(value):
                    item, pos = _varint(value, pos)
                    halves.append(item)
        elif number == TENSOR_EXTERNAL:
            key, text = _entry(value)
            tensor.external[key] = text
        elif number == TENSOR_LOCATION and isinstance(value, int):
            tensor.location = value
    tensor.finite = _all_finite(tensor.data_type, raw, packed, halves)
    return tensor


def _sparse(data: memoryview) -> Iterator[Tensor]:
    for number, value in _fields(data):
        if number in (SPARSE_VALUES, SPARSE_INDICES) and not isinstance(value, int):
            yield _tensor(value)


def _nodes(data: memoryview, number_of_node: int, depth: int) -> Iterator[Tensor]:
    for number, value in _fields(data):
        if number != number_of_node or isinstance(value, int):
            continue
        for attr_number, attribute in _fields(value):
            if attr_number == NODE_ATTRIBUTE and not isinstance(attribute, int):
                yield from _attribute(attribute, depth)


def _attribute(data: memoryview, depth: int) -> Iterator[Tensor]:
    for number, value in _fields(data):
        if isinstance(value, int):
            continue
        if number in (ATTR_T, ATTR_TENSORS):
            yield _tensor(value)
        elif number in (ATTR_SPARSE, ATTR_SPARSES):
            yield from _sparse(value)
        elif number in (ATTR_G, ATTR_GRAPHS):
            yield from _graph(value, depth + 1)


def _graph(data: memoryview, depth: int = 0) -> Iterator[Tensor]:
    if depth > MAX_DEPTH:
        raise WireError(f"subgraphs nested deeper than {MAX_DEPTH}")
    for number, value in _fields(data):
        if isinstance(value, int):
            continue
        if number == GRAPH_INITIALIZER:
            yield _tensor(value)
        elif number == GRAPH_SPARSE:
            yield from _sparse(value)
    yield from _nodes(data, GRAPH_NODE, depth)


def scan(data: bytes) -> Scan:
    """The metadata and tensors of a serialized ModelProto."""
    view = memoryview(data)
    result = Scan()
    for number, value in _fields(view):
        if isinstance(value, int):
            continue
        if number == MODEL_METADATA:
            key, text = _entry(value)
            result.metadata[key] = text
        elif number == MODEL_GRAPH:
            result.tensors.extend(_graph(value))
        elif number == MODEL_FUNCTIONS:
            result.tensors.extend(_nodes(value, FUNCTION_NODE, 0))
    return result
