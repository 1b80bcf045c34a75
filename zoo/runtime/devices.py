"""Where models run: torch devices, and onnxruntime sessions with the right provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zoo.contract.model import TorchRunner as TorchRunner  # re-exported: where models run
from zoo.errors import UsageError
from zoo.store.exports import check_finite_outputs


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is present; ``cuda`` without one is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"bad device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name} but no CUDA GPU is available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {name} but only {torch.cuda.device_count()} GPU(s) are visible"
            )
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


def tune_for_training(device: torch.device) -> None:
    """On CUDA: float32 matmuls and convolutions on TF32 tensor cores (the precision bf16
    autocast already trades for speed; the parts it leaves in float32 gain most), and cuDNN
    picks the fastest convolution algorithm for each shape it meets. CPU numerics stay as they
    are, so the published CPU recipes reproduce."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def onnx_session(path: Path, device: str = "auto", threads: int = 0) -> Any:
    """An onnxruntime session: CUDA provider (CPU fallback) on a GPU, CPU provider otherwise.

    CUDA is only requested when torch sees a GPU, since onnxruntime-gpu lists the CUDA provider
    as available even on machines without one and then logs errors.
    """
    from zoo.store.exports import open_session

    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UsageError(f"--device {device} but no CUDA GPU is available; use --device cpu")
    cuda = int(device.partition(":")[2] or 0) if use_cuda else None
    return open_session(path, cuda, threads)


CUDA = "CUDAExecutionProvider"


class OnnxRunner:
    """Runs exported graphs in onnxruntime; ``files`` maps graph names to .onnx paths.

    On the CUDA provider each call goes through IO binding: inputs are bound where torch put
    them on the GPU and outputs are written to GPU memory, so onnxruntime adds no host copies
    of its own (the one copy back is the runner's contract: CPU tensors out, as TorchRunner)."""

    name = "onnx"

    def __init__(self, files: dict[str, Path], device: str = "auto", threads: int = 0):
        self.sessions = {g: onnx_session(p, device, threads) for g, p in files.items()}
        providers = {s.get_providers()[0] for s in self.sessions.values()}
        self.provider = ",".join(sorted(providers))
        self.gpus = {  # the GPU each CUDA session runs on, for IO binding
            g: torch.device("cuda", int(s.get_provider_options()[CUDA]["device_id"]))
            for g, s in self.sessions.items()
            if s.get_providers()[0] == CUDA
        }

    def __call__(self, graph: str, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        session = self.sessions[graph]
        names = [o.name for o in session.get_outputs()]
        feed = {i.name: inputs[i.name] for i in session.get_inputs()}
        if graph in self.gpus:
            outputs = run_bound(session, feed, names, self.gpus[graph])
        else:
            outputs = session.run(names, {k: v.numpy() for k, v in feed.items()})
        check_finite_outputs(dict(zip(names, outputs)), graph)
        return {n: torch.from_numpy(v) for n, v in zip(names, outputs)}


def run_bound(
    session: Any, feed: dict[str, torch.Tensor], names: list[str], device: torch.device
) -> list[Any]:
    """One run of ``session`` through IO binding on ``device``: inputs bound in place (moved
    there first if elsewhere), outputs allocated there; returns the outputs as numpy arrays."""
    binding = session.io_binding()
    kind, index = device.type, device.index or 0
    held = []  # the bound tensors must outlive the run
    for name, tensor in feed.items():
        t = tensor.to(device).contiguous()
        held.append(t)
        dtype = torch.empty((), dtype=t.dtype).numpy().dtype
        binding.bind_input(name, kind, index, dtype, tuple(t.shape), t.data_ptr())
    for name in names:
        binding.bind_output(name, kind, index)
    session.run_with_iobinding(binding)
    return list(binding.copy_outputs_to_cpu())
