"""What `zoo serve` serves: each model's graphs, opened in onnxruntime, with their names and
shapes as the open inference protocol reports them.

A source (a catalogue name, a run, a weights or .onnx file) resolves to its ONNX export the
way `zoo sample` finds it: an .onnx file is its own export, anything else the export cached
for its weights (zoo.store.exports.ExportSlot). A missing export is made first in a child
process, so this process never imports torch. A model of one graph is served under its name;
a model of several under NAME-GRAPH (vae-mnist-decoder, vae-mnist-encoder), as a Triton
model repository names them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.contract.diffusion import Diffusion, describe
from zoo.contract.metadata import ModelInfo
from zoo.errors import UsageError, ZooError

# onnxruntime's element types -> the protocol's datatypes
DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(float16)": "FP16",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
}


@dataclass
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]  # -1 where the graph leaves an axis free (the batch, a CycleGAN's sides)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass
class ServedGraph:
    """One graph of one model: what the protocol calls a model."""

    name: str  # the protocol's model name
    model: ServedModel
    graph: str
    path: Path
    session: Any
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


@dataclass
class ServedModel:
    """A model as zoo knows it: its info, its card's fields and its graphs."""

    name: str
    info: ModelInfo
    origin: str
    card: dict[str, Any]
    prior: str  # the graph samples come from ("" when the family declares none)
    multistep: str = ""  # or the graph a multi-step sampler calls (a diffusion model's)
    description: Diffusion | None = None  # that sampler, read from the graph's metadata
    grid: Path | None = None  # the grid shipped beside the weights
    source: str = ""  # what `zoo serve` was given: inversion runs `zoo invert` on it
    graphs: dict[str, ServedGraph] = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        prior = self.graphs.get(self.prior or self.multistep)
        return prior is not None and any(i.name == "labels" for i in prior.inputs)


def _specs(values: Any) -> list[TensorSpec]:
    specs = []
    for value in values:
        dims = [d if isinstance(d, int) and d > 0 else -1 for d in value.shape]
        datatype = DATATYPES.get(value.type)
        if datatype is None:
            raise UsageError(f"cannot serve a graph with a {value.type} tensor ({value.name})")
        specs.append(TensorSpec(value.name, datatype, dims))
    return specs


def export_files(source: str) -> tuple[dict[str, Path], str]:
    """The graph files serving ``source`` and where they came from, exporting once (in a
    child process that imports torch) when no export is cached."""
    from zoo.store.exports import ExportSlot, graph_files
    from zoo.store.sources import resolve

    resolved = resolve(source)
    if resolved.path.suffix == ".onnx":
        return graph_files(resolved.path), resolved.origin
    slot = ExportSlot.of(resolved.path)
    cached = slot.cached()
    if cached is None:
        print(f"zoo: exporting {source} to ONNX once, before serving", file=sys.stderr)
        script = "import sys; from zoo import api; api.onnx_files(api.load(sys.argv[1]))"
        done = subprocess.run([sys.executable, "-c", script, str(source)], text=True)
        cached = slot.cached()
        if done.returncode or cached is None:
            raise ZooError(f"cannot export {source} to ONNX for serving (see above)")
    return graph_files(cached), f"{resolved.origin}, exported to {cached.parent}"


def _card(name: str, info: ModelInfo) -> dict[str, Any]:
    """The catalogue's fields for ``name`` (empty for a run or a file of no catalogue)."""
    from zoo.registry.discovery import get_registry

    entry = get_registry().catalogue.get(name)
    card: dict[str, Any] = {
        "family": info.family,
        "data": info.data,
        "image_shape": [info.spec.channels, info.spec.size, info.spec.size],
        "num_classes": info.spec.num_classes,
        "classes": info.classes,
    }
    if entry is not None:
        card["summary"] = entry.summary
        if entry.weights is not None:
            card["metrics"] = dict(entry.weights.metrics)
            card["sha256"] = entry.weights.sha256
    return card


NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def load_model(source: str, device: str = "cpu", threads: int = 0) -> ServedModel:
    """Open ``source``'s graphs in onnxruntime (CUDA with ``device`` cuda[:N])."""
    from zoo.registry.discovery import get_registry
    from zoo.store.exports import onnx_metadata, open_session, read_onnx_info

    files, origin = export_files(source)
    info = read_onnx_info(next(iter(files.values())))
    name = NAME_RE.sub("-", info.name or Path(source).stem).strip("-") or "model"
    family = get_registry().families.get(info.family)
    prior = family.prior if family else ""
    multistep = family.multistep if family and family.multistep in files else ""
    model = ServedModel(name, info, origin, _card(name, info), prior, multistep, source=str(source))
    if multistep:
        model.description = describe(onnx_metadata(files[multistep]))
    entry = get_registry().catalogue.get(name)
    if entry is not None and entry.weights is not None and entry.weights.file:
        model.grid = Path(entry.weights.file).with_name("samples.png")
    cuda = None
    if device.startswith("cuda"):
        cuda = int(device.partition(":")[2] or 0)
    for graph, path in sorted(files.items()):
        session = open_session(path, cuda, threads)
        served = name if len(files) == 1 else f"{name}-{graph}"
        model.graphs[graph] = ServedGraph(
            served,
            model,
            graph,
            path,
            session,
            _specs(session.get_inputs()),
            _specs(session.get_outputs()),
        )
    return model


def default_sources() -> list[str]:
    """Every catalogue model with pretrained weights, plugins' included."""
    from zoo.registry.discovery import get_registry

    catalogue = get_registry().catalogue
    return sorted(name for name, entry in catalogue.items() if entry.weights is not None)
