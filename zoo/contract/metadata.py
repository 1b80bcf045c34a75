"""Every key zoo writes into the metadata of its files (safetensors weights, ONNX exports),
the format version they follow, and the readers that accept older versions.

Format versions: 0, files from before the key existed; 1, the first published weights
(2026-11); 2, one layout of ``zoo.graphs`` in every file kind (below). Readers accept every
older version (tests/fixtures holds files of version 1 that must keep loading and sampling
the same) and refuse a newer one with a message, so an old zoo never misreads a file written
by a later one. Light: no torch, so tools can read a file's metadata without it.

Keys:
  zoo.format   the format version (an integer)
  zoo.info     ModelInfo as JSON: family, config, image spec, name, data, training settings
  zoo.kind     what a safetensors file holds: checkpoint, export or pretrained
  zoo.graphs   the inference graphs: {name: {"inputs": {input: {"dtype", "shape"}},
               "outputs": [...], "file": ONNX file of the graph (ONNX exports only)}}
  zoo.graph    in an ONNX file: which graph of ``zoo.graphs`` it holds
  zoo.export   in an ONNX file: a digest of the exported weights and metadata, the same in
               every graph file of one export (a set mixed from two exports is refused)
  zoo.version  the zoo release that wrote the file
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import UsageError

FORMAT_KEY = "zoo.format"
INFO_KEY = "zoo.info"
KIND_KEY = "zoo.kind"
GRAPHS_KEY = "zoo.graphs"
GRAPH_KEY = "zoo.graph"
EXPORT_KEY = "zoo.export"
VERSION_KEY = "zoo.version"
FORMAT_VERSION = 2


def check_format(metadata: dict[str, str], where: object) -> int:
    """The file's metadata format version, refusing versions this release cannot read."""
    text = metadata.get(FORMAT_KEY, "0")
    if not text.isdigit() or len(text) > 6:
        raise UsageError(f"{where} has a malformed {FORMAT_KEY} ({text[:20]!r})")
    version = int(text)
    if version > FORMAT_VERSION:
        raise UsageError(
            f"{where} uses zoo metadata format {version}, newer than this zoo reads "
            f"({FORMAT_VERSION}); upgrade zoo-gen to load it"
        )
    return version


def graph_layout(graphs: dict[str, Any], files: dict[str, str] | None = None) -> str:
    """``zoo.graphs`` for `zoo.contract.model.Graph` objects (and, in ONNX exports, their files)."""
    layout = {}
    for name, g in graphs.items():
        inputs = {
            k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": ["batch", *v.shape[1:]]}
            for k, v in g.example.items()
        }
        layout[name] = {"inputs": inputs, "outputs": list(g.outputs)}
        if files:
            layout[name]["file"] = files[name]
    return json.dumps(layout, sort_keys=True)


def read_graphs(metadata: dict[str, str], where: object) -> dict[str, dict[str, Any]]:
    """``zoo.graphs`` in the current layout, from a file of any version this zoo reads:
    version 1 ONNX files mapped names to files, version 1 safetensors to input shapes."""
    version = check_format(metadata, where)
    try:
        graphs = json.loads(metadata.get(GRAPHS_KEY, "{}"))
    except (json.JSONDecodeError, RecursionError):  # malformed, or nested a million deep
        raise UsageError(f"{where} has malformed {GRAPHS_KEY} metadata") from None
    if not isinstance(graphs, dict):
        raise UsageError(f"{where}: {GRAPHS_KEY} must map graph names to graphs")
    if version < 2:
        graphs = {name: _upgrade_graph(g) for name, g in graphs.items()}
    for name, g in graphs.items():
        if not (isinstance(g, dict) and isinstance(g.get("inputs", {}), dict)):
            raise UsageError(f"{where}: {GRAPHS_KEY} entry {str(name)[:40]!r} is malformed")
    return graphs


def _upgrade_graph(entry: Any) -> Any:
    if isinstance(entry, str):  # version 1 ONNX: the graph's file
        return {"inputs": {}, "outputs": [], "file": entry}
    if isinstance(entry, dict) and isinstance(entry.get("inputs"), dict):  # 1 safetensors
        inputs = {k: {"shape": ["batch", *v]} for k, v in entry["inputs"].items()}
        return {**entry, "inputs": inputs}
    return entry


MAX_CHANNELS, MAX_SIZE, MAX_CLASSES = 4, 4096, 100_000


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} {str(value)[:20]!r} is not a whole number")
    return value


def _range(value: Any) -> tuple[float, float]:
    ok = isinstance(value, list | tuple) and len(value) == 2
    ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in value)
    if not ok or not value[0] < value[1]:
        raise ValueError(f"value_range {str(value)[:40]} is not two finite numbers, low < high")
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class ImageSpec:
    """What a model consumes and produces: images in ``value_range``, NCHW."""

    channels: int
    size: int
    num_classes: int = 0
    value_range: tuple[float, float] = (-1.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "size": self.size,
            "num_classes": self.num_classes,
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        """Read from a file that may come from anywhere: every field within what an image
        model can have, so crafted metadata cannot make zoo allocate without bound."""
        if not isinstance(d, dict):
            raise ValueError("the image spec is not a JSON object")
        channels, size = _whole(d["channels"], "channels"), _whole(d["size"], "size")
        classes = _whole(d.get("num_classes", 0), "num_classes")
        low, high = _range(d.get("value_range", (-1.0, 1.0)))
        if not (1 <= channels <= MAX_CHANNELS and 1 <= size <= MAX_SIZE):
            raise ValueError(f"images of {channels} channels and side {size} are out of range")
        if not 0 <= classes <= MAX_CLASSES:
            raise ValueError(f"num_classes {classes} is out of range (0 to {MAX_CLASSES:,})")
        return cls(channels, size, classes, (low, high))


@dataclass
class ModelInfo:
    """Everything needed to rebuild a model without its training run."""

    family: str
    config: dict[str, Any]
    spec: ImageSpec
    name: str = ""
    data: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    zoo_version: str = ""
    classes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        d = dict(self.__dict__)
        d["spec"] = self.spec.to_dict()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        """Parse metadata from a file that may come from anywhere: names must be catalogue
        names, since they end up in messages and must never end up in paths."""
        from zoo.contract.specs import NAME_RE

        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("zoo.info is not a JSON object")
        if not isinstance(d.get("config", {}), dict):
            raise ValueError("its config is not a JSON object")
        d["spec"] = ImageSpec.from_dict(d["spec"])
        classes = d.get("classes", [])
        if not isinstance(classes, list) or len(classes) > d["spec"].num_classes:
            raise ValueError("classes must be a list of at most num_classes names")
        for key in ("family", "name"):
            value = d.get(key, "")
            if not isinstance(value, str) or (
                (value or key == "family") and not NAME_RE.match(value)
            ):
                raise ValueError(f"{key} {str(value)[:40]!r} is not a valid name")
        return cls(**d)
