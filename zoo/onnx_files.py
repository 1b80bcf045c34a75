"""Reading what zoo writes into exported ONNX files (metadata_props), and checking that a file
from elsewhere is safe to run before onnxruntime sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError
from zoo.metadata import INFO_KEY, ModelInfo, check_format, read_graphs


def _load(path: Path) -> Any:
    import onnx

    data = path.read_bytes() if path.is_file() else b""
    if not data:
        raise UsageError(f"{path} is empty or missing: not an ONNX model")
    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise UsageError(f"{path} is not a readable ONNX file ({exc})") from None


def onnx_metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in _load(path).metadata_props}


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph holds: initializers and attribute tensors, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Any) -> Iterator[Any]:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sparse in [attr.sparse_tensor, *attr.sparse_tensors]:
                yield from (sparse.values, sparse.indices)
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graph_tensors(sub)


def self_contained(path: Path) -> bytes:
    """The file's bytes, refusing models whose tensors live in other files: an external-data
    reference can point at any file beside the model, whose bytes would then come out in the
    outputs. zoo's own exports are always self-contained."""
    import onnx

    model = _load(path)
    tensors = [*_graph_tensors(model.graph)]
    for function in model.functions:
        tensors += _node_tensors(function.node)
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            where = {e.key: e.value for e in tensor.external_data}.get("location", "?")
            raise UsageError(
                f"{path} keeps tensor {tensor.name!r} in an external file ({where!r}); zoo "
                "only runs self-contained ONNX files (re-export the model with zoo)"
            )
    return path.read_bytes()


def export_target(weights: Path) -> Path:
    """Where the ONNX export of ``weights`` made for sampling goes: inside the checkpoint for
    a run, else under the cache keyed by the weights' sha256 (metadata, such as a name,
    never chooses where files go)."""
    from zoo.download import cache_dir, sha256_file

    if weights.parent.parent.name == "checkpoints":
        return weights.parent / "onnx" / "model.onnx"
    return cache_dir() / "onnx" / sha256_file(weights) / "model.onnx"


def cached_export(target: Path) -> Path | None:
    """The export made earlier at ``target`` (an `export_target`): ``model.onnx``, or the
    first of several graphs' ``model.GRAPH.onnx``, if there is one."""
    if target.exists():
        return target
    return next(iter(sorted(target.parent.glob("model.*.onnx"))), None)


def open_session(path: Path, cuda: int | None = None, threads: int = 0) -> Any:
    """An onnxruntime session of a self-contained file: on CUDA device ``cuda`` (CPU
    fallback) when given, else on the CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
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


def read_onnx_info(path: Path) -> ModelInfo:
    meta = onnx_metadata(path)
    if INFO_KEY not in meta:
        raise UsageError(f"{path} has no zoo metadata: it was not exported by zoo")
    check_format(meta, path)
    try:
        return ModelInfo.from_json(meta[INFO_KEY])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UsageError(f"{path} has corrupt zoo metadata ({exc})") from None


def graph_files(path: Path) -> dict[str, Path]:
    """All graphs exported with ``path`` (a VAE's encoder beside its decoder, ...), which must
    be plain file names in the same folder."""
    graphs = {name: g.get("file") for name, g in read_graphs(onnx_metadata(path), path).items()}
    if not all(
        isinstance(f, str) and f.endswith(".onnx") and Path(f).name == f for f in graphs.values()
    ):
        raise UsageError(f"{path}: zoo.graphs must name each graph's .onnx file beside it")
    files = {name: path.with_name(str(file)) for name, file in graphs.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise UsageError(f"{path} was exported with {', '.join(missing)}, which is missing")
    return files
