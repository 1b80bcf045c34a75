"""Reading what zoo writes into exported ONNX files (metadata_props), and checking that a file
from elsewhere is safe to run before onnxruntime sees it, without importing the onnx package
(zoo.base.onnx_wire reads the protobuf itself)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.base.files import sha256_file
from zoo.base.onnx_wire import Scan, WireError, scan
from zoo.contract.metadata import (
    EXPORT_KEY,
    FORMAT_VERSION,
    GRAPH_KEY,
    INFO_KEY,
    ModelInfo,
    check_format,
    read_graphs,
)
from zoo.errors import UsageError, ZooError


def _read(path: Path) -> tuple[bytes, Scan]:
    """The file's bytes, read once, and what they hold (zoo.base.onnx_wire: no onnx import)."""
    data = path.read_bytes() if path.is_file() else b""
    if not data:
        raise UsageError(f"{path} is empty or missing: not an ONNX model")
    try:
        return data, scan(data)
    except WireError as exc:
        raise UsageError(f"{path} is not a readable ONNX file ({exc})") from None


def onnx_metadata(path: Path) -> dict[str, str]:
    return _read(path)[1].metadata


def self_contained(path: Path) -> bytes:
    """The file's bytes, read once: the bytes checked are the bytes that run (a file swapped
    between a check and a second read could bring anything). Refuses models whose tensors
    live in other files (an external-data reference can point at any file beside the model
    or in the working directory, whose bytes would then come out in the outputs; zoo's own
    exports are always self-contained) and weights that are not finite (they can only make
    black or NaN images)."""
    data, found = _read(path)
    for tensor in found.tensors:
        if tensor.is_external:
            where = tensor.external.get("location", "?")
            raise UsageError(
                f"{path} keeps tensor {tensor.name!r} in an external file ({where!r}); zoo "
                "only runs self-contained ONNX files (re-export the model with zoo)"
            )
        if not tensor.finite:
            raise UsageError(
                f"{path} holds non-finite weights (tensor {tensor.name!r}): it cannot produce "
                "images; re-export it from finite weights"
            )
    return data


MANIFEST = "export.json"  # beside a cached export: what it was made from, and its files


@dataclass(frozen=True)
class ExportSlot:
    """Where the ONNX export of one weights file made for sampling lives: a folder keyed by
    the file's sha256, inside its checkpoint for a run (so two weights files of one folder
    never share an export) and under the cache otherwise. Metadata, such as a name, never
    chooses where files go."""

    folder: Path
    weights_sha256: str

    @classmethod
    def of(cls, weights: Path) -> ExportSlot:
        from zoo.store.download import cache_dir

        digest = sha256_file(weights)
        if weights.parent.parent.name == "checkpoints":
            return cls(weights.parent / "onnx" / digest[:16], digest)
        return cls(cache_dir() / "onnx" / digest, digest)

    @property
    def target(self) -> Path:
        """The ``--out`` an exporter is given: ``model.onnx`` (``model.GRAPH.onnx`` for
        several graphs)."""
        return self.folder / "model.onnx"

    def manifest(self, files: list[Path]) -> str:
        """What `cached` checks: the weights' sha256, the metadata format and every file's
        sha256, so a planted file, one left by an older zoo or a mixed set is never run."""

        return json.dumps(
            {
                "weights_sha256": self.weights_sha256,
                "format": FORMAT_VERSION,
                "files": {f.name: sha256_file(f) for f in sorted(files)},
            },
            indent=1,
        )

    def cached(self) -> Path | None:
        """The export made earlier for these weights (its first graph's file), if it is
        whole and bound to them; None otherwise (the caller exports again)."""

        try:
            record = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
            files = record["files"]
            ok = record["weights_sha256"] == self.weights_sha256
            ok = ok and record["format"] == FORMAT_VERSION and isinstance(files, dict) and files
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not ok or not all(isinstance(n, str) and Path(n).name == n for n in files):
            return None
        paths = [self.folder / name for name in sorted(files)]
        for path in paths:
            if not path.is_file() or sha256_file(path) != files[path.name]:
                return None
        return paths[0]


def open_session(path: Path, cuda: int | None = None, threads: int = 0) -> Any:
    """An onnxruntime session of a self-contained file: on CUDA device ``cuda`` (CPU
    fallback) when given, else on the CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # a model from bytes resolves external data against this folder, or else the working
    # directory: name one that holds nothing (self_contained refuses such files anyway)
    options.add_session_config_entry(
        "session.model_external_initializers_file_folder_path", "/dev/null"
    )
    if threads:
        options.intra_op_num_threads = threads
    providers: list[Any] = ["CPUExecutionProvider"]
    if cuda is not None:
        providers.insert(
            0,
            ("CUDAExecutionProvider", {"device_id": cuda, "cudnn_conv_algo_search": "HEURISTIC"}),
        )
    model = self_contained(path)  # the bytes checked are the bytes that run
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ZooError(f"onnxruntime cannot load {path}: {exc}") from None


def check_finite_outputs(outputs: dict[str, Any], graph: str) -> None:
    """Refuse NaN or Inf in a graph's float outputs: they would become black images that
    look like success."""
    import numpy as np

    for name, value in outputs.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ZooError(
                f"graph {graph!r} produced non-finite values in {name!r}: the model's weights "
                "or its inputs are broken; nothing was written"
            )


def read_onnx_info(path: Path, meta: dict[str, str] | None = None) -> ModelInfo:
    """The ModelInfo in ``path`` (from its ``meta``data when the caller read it already)."""
    meta = onnx_metadata(path) if meta is None else meta
    if INFO_KEY not in meta:
        raise UsageError(f"{path} has no zoo metadata: it was not exported by zoo")
    check_format(meta, path)
    try:
        return ModelInfo.from_json(meta[INFO_KEY])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UsageError(f"{path} has corrupt zoo metadata ({exc})") from None


def graph_files(path: Path, meta: dict[str, str] | None = None) -> dict[str, Path]:
    """All graphs exported with ``path`` (a VAE's encoder beside its decoder, ...), which must
    be plain file names in the same folder, each saying it holds its graph of the same
    export. The file given always runs as its own graph (renamed or not: another file is
    never run in its name), and a set mixed from two exports (a kill between the renames of
    `zoo export --out`) is refused. ``meta``: the file's metadata, when already read."""
    meta = onnx_metadata(path) if meta is None else meta
    graphs = {name: g.get("file") for name, g in read_graphs(meta, path).items()}
    if not all(
        isinstance(f, str) and f.endswith(".onnx") and Path(f).name == f for f in graphs.values()
    ):
        raise UsageError(f"{path}: zoo.graphs must name each graph's .onnx file beside it")
    files = {name: path.with_name(str(file)) for name, file in graphs.items()}
    own = meta.get(GRAPH_KEY)
    if own in files:  # the file given is its own graph, whatever its name or zoo.graphs says
        files[own] = path
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise UsageError(f"{path} was exported with {', '.join(missing)}, which is missing")
    for name, sibling in files.items():
        if sibling.name == path.name:
            continue
        theirs = onnx_metadata(sibling)
        if theirs.get(GRAPH_KEY, name) != name or theirs.get(EXPORT_KEY) != meta.get(EXPORT_KEY):
            raise UsageError(
                f"{sibling} is not the {name!r} graph of the export {path} belongs to (files "
                "of two exports mixed, or an interrupted export); export the model again"
            )
    return files
