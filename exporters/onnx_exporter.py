"""ONNX export through torch.onnx (dynamo), validated in onnxruntime before it is kept.

Each inference graph becomes one self-contained file (opset 18, weights inside, dynamic batch)
whose metadata_props tell a service without zoo what to feed it and what comes out.

``onnx-fp16`` (`zoo export --fp16`) stores weights and computes in float16, for GPUs' tensor
cores and half the file size, with float32 inputs and outputs, so it replaces the float32
file unchanged. It is validated against the float32 PyTorch model within FP16_ATOL.

``onnx-int8`` (`zoo export --int8`) quantises the sampling graph statically (QDQ) for CPUs'
integer units (VNNI, AMX), calibrated on the model's own latent draws; inputs and outputs stay
float32. Its pixels are not within a tolerance of the float model's, so `zoo export --int8`
keeps it only if its samples score within a stated FLD tolerance (zoo/evaluation/quantized.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.base.files import atomic_path
from zoo.contract.metadata import (
    EXPORT_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    GRAPH_KEY,
    GRAPHS_KEY,
    INFO_KEY,
    VERSION_KEY,
    graph_layout,
)
from zoo.contract.model import GenerativeModel, Graph, ModelInfo
from zoo.errors import UsageError, ZooError
from zoo.runtime.devices import onnx_session

OPSET = 18
CHECK_BATCHES = (1, 7)
CALIBRATION = (8, 64)  # int8: batches, and images per batch, of the prior's draws
# float16 keeps 11 significant bits: outputs in [-1, 1] within 1/64 of the float32 model's,
# two grey levels of an 8-bit image
FP16_ATOL = 1.6e-2


class HalfPrecision(torch.nn.Module):
    """A float16 copy of ``module`` behind float32 inputs and outputs (integer inputs such as
    class labels pass as they are)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = copy.deepcopy(module).half()

    def forward(self, *args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.module(*(a.half() if a.is_floating_point() else a for a in args))
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


def _inputs_like(g: Graph, batch: int, size_step: int, gen: torch.Generator):
    """Random inputs of another batch size (and spatial size) drawn like the example."""
    out = {}
    for name, ex in g.example.items():
        shape = list(ex.shape)
        shape[0] = batch
        if g.dynamic_size and ex.dim() == 4:
            shape[2] += size_step
            shape[3] += size_step
        if ex.dtype.is_floating_point:
            out[name] = (
                torch.randn(shape, generator=gen).clamp_(-1, 1)
                if ex.dim() == 4
                else torch.randn(shape, generator=gen)
            )
        else:  # class indices: draw from the example's own (valid) values
            idx = torch.randint(len(ex), (batch,), generator=gen)
            out[name] = ex.reshape(len(ex), -1)[idx].reshape(shape)
    return out


def _export_graph(
    name: str, g: Graph, path: Path, metadata: dict[str, str], half: bool = False
) -> None:
    import onnx

    module = HalfPrecision(g.module.eval()) if half else g.module.eval()
    if min(v.shape[0] for v in g.example.values()) < 2:
        raise ZooError(f"graph {name!r}: example inputs need batch >= 2 (a batch of 1 is baked in)")
    batch = torch.export.Dim("batch")
    dynamic = []
    for ex in g.example.values():
        dims = {0: batch}
        if g.dynamic_size and ex.dim() == 4:
            m = g.size_multiple
            dims[2] = m * torch.export.Dim(f"{name}_h", min=1, max=4096 // m)
            dims[3] = m * torch.export.Dim(f"{name}_w", min=1, max=4096 // m)
        dynamic.append(dims)
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module,
                tuple(g.example.values()),
                dynamo=True,
                opset_version=OPSET,
                input_names=list(g.example),
                output_names=g.outputs,
                # HalfPrecision takes *args: torch.export sees them as one tuple argument
                dynamic_shapes=(tuple(dynamic),) if half else tuple(dynamic),
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            raise ZooError(f"ONNX export of {name!r} failed: {type(exc).__name__}: {exc}") from None
    assert program is not None  # None only from the legacy (dynamo=False) exporter
    proto = program.model_proto
    _strip_provenance(proto.graph)
    for function in proto.functions:
        _strip_nodes(function.node)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
        _validate(name, g, tmp, max(g.atol, FP16_ATOL) if half else g.atol)


def _strip_provenance(graph: Any) -> None:
    """Drop what the exporter records about where each node came from: stack traces with the
    exporting machine's absolute paths and source lines. A deployed file should not carry
    them, and without them the bytes depend on the weights and zoo's version, not on where
    zoo was installed."""
    graph.doc_string = ""
    for value in [*graph.input, *graph.output, *graph.value_info]:
        del value.metadata_props[:]
        value.doc_string = ""
    _strip_nodes(graph.node)


def _strip_nodes(nodes: Any) -> None:
    for node in nodes:
        del node.metadata_props[:]
        node.doc_string = ""
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _strip_provenance(sub)


def _validate(name: str, g: Graph, path: Path, atol: float) -> None:
    """onnxruntime vs PyTorch (float32) at batch 1 and 7 (and another spatial size where
    dynamic)."""
    session = onnx_session(path, "cpu")
    gen = torch.Generator().manual_seed(0)
    for batch in CHECK_BATCHES:
        for size_step in (0, g.size_multiple) if g.dynamic_size else (0,):
            inputs = _inputs_like(g, batch, size_step, gen)
            with torch.inference_mode():
                expected = g.module(*inputs.values())
            expected = expected if isinstance(expected, tuple) else (expected,)
            got = session.run(g.outputs, {k: v.numpy() for k, v in inputs.items()})
            for out_name, e, o in zip(g.outputs, expected, got):
                e = e.float().numpy()
                if e.shape != o.shape:
                    raise ZooError(f"ONNX {name}.{out_name}: shape {o.shape} != torch {e.shape}")
                diff = float(np.max(np.abs(e - o)))
                if not diff <= atol:
                    raise ZooError(
                        f"ONNX {name}.{out_name} differs from PyTorch by {diff:.2e} at batch "
                        f"{batch} (tolerance {atol:.1e}); the export is not kept"
                    )


def export(
    model: GenerativeModel, out: Path, info: ModelInfo, precision: str = "float32"
) -> list[Path]:
    graphs = model.graphs()
    half = precision == "float16"
    # int8: the graphs that draw from a latent z (calibrated on the prior's own draws); a
    # translator's or encoder's image inputs have no such distribution to calibrate on
    quantized = {n for n, g in graphs.items() if "z" in g.example} if precision == "int8" else set()
    if precision == "int8" and not quantized:
        raise UsageError(
            f"{info.family} has no graph that samples from a latent z, which int8 export "
            "calibrates on: export it in float32 (--format onnx)"
        )
    files = {
        name: out if len(graphs) == 1 else out.with_name(f"{out.stem}.{name}.onnx")
        for name in graphs
    }
    spec = info.spec
    common = {
        EXPORT_KEY: export_digest(model, info, precision),
        FORMAT_KEY: str(FORMAT_VERSION),
        INFO_KEY: info.to_json(),
        GRAPHS_KEY: graph_layout(graphs, {k: p.name for k, p in files.items()}),
        VERSION_KEY: info.zoo_version,
        "family": info.family,
        "output_range": json.dumps(list(spec.value_range)),
        "image_shape": json.dumps([spec.channels, spec.size, spec.size]),
        "num_classes": str(spec.num_classes),
        "classes": json.dumps(info.classes),
    }
    for name, g in graphs.items():
        meta = {
            **common,
            GRAPH_KEY: name,
            **g.metadata,
            "inputs": json.dumps(
                {
                    k: [str(v.dtype).removeprefix("torch."), ["batch", *v.shape[1:]]]
                    for k, v in g.example.items()
                }
            ),
            "outputs": json.dumps(g.outputs),
            "precision": "int8" if name in quantized else "float16" if half else "float32",
        }
        _export_graph(name, g, files[name], meta, half)
        if name in quantized:
            _quantize(name, g, files[name], info.spec.num_classes)
    return list(files.values())


def export_digest(model: GenerativeModel, info: ModelInfo, precision: str) -> str:
    """What every graph file of one export shares: a digest of the weights, the metadata and
    the precision, so graph files of two exports are never run together."""
    # float32 and float16 hash as they did before int8 existed, so their files stay the same
    tag = {"float32": "False", "float16": "True"}.get(precision, precision)
    digest = hashlib.sha256(f"{FORMAT_VERSION}\n{info.to_json()}\n{tag}\n".encode())
    for key, tensor in sorted(model.inference_state().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key} {t.dtype} {tuple(t.shape)}\n".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def export_fp16(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    """`export` with float16 weights and arithmetic behind float32 inputs and outputs."""
    return export(model, out, info, "float16")


def export_int8(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    """`export` with the sampling graph statically quantised to int8 (`_quantize`)."""
    return export(model, out, info, "int8")


def calibration_inputs(g: Graph, num_classes: int) -> list[dict[str, np.ndarray]]:
    """CALIBRATION batches of the graph's inputs as sampling feeds them: z from the normal
    prior, labels uniform over the classes (a fixed seed: the same export each time)."""
    gen = torch.Generator().manual_seed(0)
    feeds = []
    for _ in range(CALIBRATION[0]):
        feed = {}
        for key, ex in g.example.items():
            shape = (CALIBRATION[1], *ex.shape[1:])
            if ex.is_floating_point():
                feed[key] = torch.randn(shape, generator=gen).numpy()
            else:
                feed[key] = torch.randint(max(num_classes, 1), shape, generator=gen).numpy()
        feeds.append(feed)
    return feeds


def _quantize(name: str, g: Graph, path: Path, num_classes: int) -> None:
    """Replace the float32 graph at ``path`` by onnxruntime's static QDQ quantisation of it:
    per-channel int8 weights and uint8 activations with ranges calibrated on the prior's
    draws (min-max). Transposed convolutions stay float32: onnxruntime has no integer kernel
    for them, and dequantising their weights at every call only costs time. The graph keeps
    its metadata and records its mean absolute difference from the float32 graph."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    feeds = calibration_inputs(g, num_classes)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.left, None)

    root = logging.getLogger()
    level = root.level
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # quiet its advice to pre-process (root logger, restored after) and its calibration
        # sessions' notes on unused initializers (zoo's own sessions set their own severity)
        root.setLevel(logging.ERROR)
        ort.set_default_logger_severity(3)
        try:
            quantize_static(
                str(path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            )  # fmt: skip
        finally:
            root.setLevel(level)
        proto = onnx.load(str(tmp))
        if not any(node.op_type == "QuantizeLinear" for node in proto.graph.node):
            raise UsageError(
                f"the {name!r} graph has no layer onnxruntime runs in int8 (convolutions, "
                "matrix products; transposed convolutions stay float): export it in float32"
            )
        session = onnx_session(tmp, "cpu")
        with torch.inference_mode():
            expected = g.module(*(torch.from_numpy(v) for v in feeds[0].values()))
        (got,) = session.run(g.outputs[:1], feeds[0])
        if not np.isfinite(got).all():
            raise ZooError(f"the int8 {name!r} graph gives non-finite outputs; not kept")
        error = float(np.abs(got - expected.numpy()).mean())
        entry = proto.metadata_props.add()
        entry.key, entry.value = "int8_mean_abs_diff", f"{error:.5f}"
        onnx.save_model(proto, str(tmp))
