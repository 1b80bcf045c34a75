"""The machine's own limits, measured in the same run as the speeds they judge.

A rate means little without the roof above it: the same images/s is most of a 2-core AVX2
CPU's float32 throughput and a sliver of an AMX CPU's bf16 throughput. So `zoo bench`
measures, at the thread count in use, how fast this machine multiplies large matrices in
each precision it has (float32 and bf16 in torch; int8 in onnxruntime, whose quantised
kernels use VNNI or AMX where the CPU has them), and reports every training and sampling
rate as a fraction of the roof of its precision. A large matrix product is the most
favourable work a CPU or GPU sees, so the fraction says how much of the machine a model
uses, not how well it could be written.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from zoo.base.cpu import cpu_features, native_bf16

SIZE = 2048  # square matrices: large enough that every kernel runs at its steady rate


def median_time(fn: Callable[[], Any], seconds: float, sync: Callable[[], None]) -> float:
    """Median seconds per call of ``fn`` over about ``seconds`` (at least 3 calls), after
    two warm-up calls."""
    for _ in range(2):
        fn()
    sync()
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - begin < seconds:
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_matmul_gflops(dtype: torch.dtype, device: torch.device, seconds: float) -> float:
    """GFLOP/s of a SIZE x SIZE matrix product in torch (two FLOPs per multiply-add)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(SIZE, SIZE, generator=gen).to(device, dtype) for _ in range(2))
    with torch.inference_mode():
        t = median_time(lambda: torch.mm(a, b), seconds, sync)
    return 2 * SIZE**3 / t / 1e9


def onnx_int8_gops(threads: int, seconds: float) -> float:
    """Giga-operations/s of a SIZE x SIZE uint8 x int8 product in onnxruntime (MatMulInteger,
    the kernel behind its quantised convolutions and matrix products)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "int8_matmul",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [SIZE, SIZE]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [SIZE, SIZE]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [SIZE, SIZE])],
    )
    # IR 8 (opset 17): onnx writes its own newest IR version, which onnxruntime may not read
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feed = {
        "a": rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8),
        "b": rng.integers(-128, 128, (SIZE, SIZE), dtype=np.int8),
    }
    t = median_time(lambda: session.run(None, feed), seconds, lambda: None)
    return 2 * SIZE**3 / t / 1e9


def measure(device: torch.device, seconds: float = 1.0) -> dict[str, Any]:
    """The roofs of this machine at the thread count in use: ``gflops`` per precision
    (fp32 and bf16 in torch, int8 in onnxruntime; a precision is absent where the hardware
    has no fast path for it) and the CPU's ``features`` (or the GPU's name)."""
    features = cpu_features()
    gflops = {"fp32": torch_matmul_gflops(torch.float32, device, seconds)}
    if device.type == "cuda" or native_bf16(features):
        gflops["bf16"] = torch_matmul_gflops(torch.bfloat16, device, seconds)
    if device.type == "cpu":
        gflops["int8"] = onnx_int8_gops(torch.get_num_threads(), seconds)
    out: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "features": features,
        "gflops": {k: round(v, 1) for k, v in gflops.items()},
    }
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out
