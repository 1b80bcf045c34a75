"""What graph-level levers give onnxruntime's CPU provider on zoo's exported generators.

    python scripts/onnx_levers.py [NAME ...] [--threads 2] [--batch 256] [--rounds 5]

For each catalogue model it exports the float32 graph, derives three variants and times them
all at one batch size, in alternating rounds (median images/s), against the export itself:

- ``gemm-head``: a ConvTranspose on a 1x1 input (a generator's first layer, the latent
  becoming a 4x4 map) as one Gemm over the whole batch; exact up to float rounding.
- ``subpixel``: each stride-2, 4x4, padding-1 ConvTranspose as four 2x2 Convs (one per output
  phase) interleaved by DepthToSpace, so onnxruntime runs its Conv kernels; exact too.
- ``int8``: onnxruntime.quantization's dynamic int8 quantization (of the sub-pixel graph, as
  ConvTranspose has no integer kernel on the CPU); lossy: the max |difference| says how much.

docs/bench.md records what it printed. None of these is what `zoo export` writes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, shape_inference

import zoo.api as api

# output phase p of a stride-2, 4x4, padding-1 transposed convolution reads kernel taps
# TAPS[p] from inputs m - 1 + p and m + p, that is a 2x2 window padded PADS[p] (before, after)
TAPS = {0: [3, 1], 1: [2, 0]}
PADS = {0: (1, 0), 1: (0, 1)}


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _plain(node: onnx.NodeProto, weights: dict[str, np.ndarray]) -> bool:
    """A ConvTranspose with constant weights and nothing but the default attributes beyond
    kernel, stride and padding."""
    a = _attrs(node)
    return (
        node.op_type == "ConvTranspose"
        and node.input[1] in weights
        and a.get("group", 1) == 1
        and list(a.get("dilations", [1, 1])) == [1, 1]
        and list(a.get("output_padding", [0, 0])) == [0, 0]
        and a.get("auto_pad", b"NOTSET") == b"NOTSET"
        and "output_shape" not in a
    )


def _rewrite(model: onnx.ModelProto, replace: Callable) -> onnx.ModelProto:
    """A copy of ``model`` whose nodes ``replace`` may swap for others (it returns None to
    keep a node); unused initializers are dropped."""
    model = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value or None for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.input]
    }
    graph = model.graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = []
    for node in graph.node:
        new = replace(node, weights, shapes.get(node.input[0]) if node.input else None)
        if new is None:
            nodes.append(node)
        else:
            extra, replaced = new
            graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in extra.items())
            nodes += replaced
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def gemm_head(node, weights, shape):
    if not (_plain(node, weights) and shape and shape[2:] == [1, 1]):
        return None
    if any(_attrs(node).get("pads", [0])):
        return None
    w = weights[node.input[1]]
    cin, cout, kh, kw = w.shape
    b = weights[node.input[2]] if len(node.input) > 2 else np.zeros(cout, np.float32)
    out = node.output[0]
    extra = {
        f"{out}_w": w.reshape(cin, -1),
        f"{out}_b": np.repeat(b, kh * kw).astype(np.float32),
        f"{out}_flat": np.array([0, cin], np.int64),
        f"{out}_map": np.array([-1, cout, kh, kw], np.int64),
    }
    return extra, [
        helper.make_node("Reshape", [node.input[0], f"{out}_flat"], [f"{out}_x"]),
        helper.make_node("Gemm", [f"{out}_x", f"{out}_w", f"{out}_b"], [f"{out}_y"]),
        helper.make_node("Reshape", [f"{out}_y", f"{out}_map"], [out]),
    ]


def subpixel(node, weights, shape):
    a = _attrs(node)
    if not (
        _plain(node, weights)
        and list(a.get("kernel_shape", [])) == [4, 4]
        and list(a.get("strides", [])) == [2, 2]
        and list(a.get("pads", [])) == [1, 1, 1, 1]
    ):
        return None
    w = weights[node.input[1]]
    out, extra, nodes, phases = node.output[0], {}, [], []
    for row in (0, 1):
        for col in (0, 1):
            name = f"{out}_phase{row}{col}"
            extra[name + "_w"] = np.ascontiguousarray(
                w[:, :, TAPS[row]][:, :, :, TAPS[col]].transpose(1, 0, 2, 3)
            )
            pads = [PADS[row][0], PADS[col][0], PADS[row][1], PADS[col][1]]
            inputs = [node.input[0], name + "_w", *node.input[2:3]]
            nodes.append(helper.make_node("Conv", inputs, [name], kernel_shape=[2, 2], pads=pads))
            phases.append(name)
    nodes.append(helper.make_node("Concat", phases, [f"{out}_phases"], axis=1))
    nodes.append(
        helper.make_node("DepthToSpace", [f"{out}_phases"], [out], blocksize=2, mode="DCR")
    )
    return extra, nodes


def int8(path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QUInt8)
    return out


def feed(session: ort.InferenceSession, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for i in session.get_inputs():
        shape = [batch, *i.shape[1:]]
        out[i.name] = (
            rng.standard_normal(shape).astype(np.float32)
            if "float" in i.type
            else rng.integers(0, 10, shape)
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", default=["dcgan-mnist", "wgan-mnist", "gan-mnist"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.log_severity_level = 3
    print(f"onnxruntime {ort.__version__}, CPU provider, ", end="")
    print(f"{args.threads} threads, batch {args.batch}")
    print("| model | variant | images/s | x export | max abs diff |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            base = api.export(name, "onnx", Path(tmp) / f"{name}.onnx")[0]
            variants = {"export": base}
            for label, replace in (("gemm-head", gemm_head), ("subpixel", subpixel)):
                path = base.with_suffix(f".{label}.onnx")
                onnx.save(_rewrite(onnx.load(str(base)), replace), path)
                variants[label] = path
            variants["int8"] = int8(variants["subpixel"])
            sessions = {
                k: ort.InferenceSession(str(v), options, providers=["CPUExecutionProvider"])
                for k, v in variants.items()
            }
            inputs = feed(sessions["export"], args.batch)
            outs = {k: s.run(None, inputs)[0] for k, s in sessions.items()}  # warm-up
            start = time.perf_counter()
            sessions["export"].run(None, inputs)
            calls = max(3, round(0.5 / (time.perf_counter() - start)))  # ~0.5 s a round
            rates: dict[str, list[float]] = {k: [] for k in sessions}
            for _ in range(args.rounds):
                for k, s in sessions.items():
                    start = time.perf_counter()
                    for _ in range(calls):
                        s.run(None, inputs)
                    rates[k].append(calls * args.batch / (time.perf_counter() - start))
            ref = statistics.median(rates["export"])
            for k, r in rates.items():
                diff = float(np.abs(outs[k] - outs["export"]).max())
                med = statistics.median(r)
                print(f"| {name} | {k} | {med:,.0f} | {med / ref:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
