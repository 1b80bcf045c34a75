"""The CUDA path: training with its fast paths, resume, sampling parity with the CPU, and
export from a CUDA-trained model. Skipped without a GPU; scripts/gpu_check.sh runs them."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import zoo.api as api
from zoo.evaluation.bench import make_trainer

pytestmark = pytest.mark.cuda

TINY = {"nz": 8, "ngf": 8, "ndf": 8, "image_size": 16, "batch_size": 16}
RUN = {**TINY, "log_every": 1, "sample_every": 100, "checkpoint_every": 2}


def train(out, steps, resume=False):
    return api.train(
        "dcgan",
        data=None if resume else "digits",
        out=out,
        steps=steps,
        device="cuda",
        overrides=None if resume else dict(RUN),
        resume=resume,
        progress=False,
    )


def last_weights(run):
    return load_file(sorted((run / "checkpoints").iterdir())[-1] / "model.safetensors")


def test_cuda_training_takes_the_fast_paths(tmp_path):
    trainer = make_trainer("dcgan", torch.device("cuda"), tmp_path, dict(TINY))
    assert trainer.precision == "bf16"
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.benchmark
    conv = next(p for p in trainer.model.parameters() if p.dim() == 4)
    assert conv.is_cuda and conv.is_contiguous(memory_format=torch.channels_last)
    assert all(opt.defaults["fused"] for opt in trainer.model.optimizers.values())


def test_cuda_run_resumes_and_samples_like_the_cpu(tmp_path):
    train(tmp_path / "straight", 4)
    train(tmp_path / "split", 2)
    train(tmp_path / "split", 4, resume=True)
    a, b = last_weights(tmp_path / "straight"), last_weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:  # cuDNN's autotuned kernels need not be bit-identical between processes
        torch.testing.assert_close(a[k], b[k], rtol=1e-2, atol=1e-3)
    gpu = api.sample(tmp_path / "split", n=8, device="cuda")
    cpu = api.sample(tmp_path / "split", n=8, device="cpu")
    assert gpu.provider.startswith("torch:cuda") and cpu.provider.startswith("torch:cpu")
    assert (gpu.images - cpu.images).abs().max() < 2e-2  # TF32 convolutions on the GPU


def test_export_of_a_cuda_run_runs_on_the_cpu(tmp_path):
    train(tmp_path / "run", 2)
    [onnx_file] = api.export(tmp_path / "run", "onnx", tmp_path / "g.onnx")
    ort = api.sample(onnx_file, n=8, runtime="onnx", device="cpu")
    torch_cpu = api.sample(tmp_path / "run", n=8, runtime="torch", device="cpu")
    assert ort.provider == "CPUExecutionProvider"
    assert (ort.images - torch_cpu.images).abs().max() < 1e-4
