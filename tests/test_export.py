"""Exports: self-validating ONNX, rebuildable safetensors, and what a deployment reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import zoo
import zoo.api as api
from zoo.contract.model import Graph
from zoo.errors import ZooError
from zoo.plugins.dcgan import DCGAN
from zoo.runtime.devices import run_bound

TINY = {
    "nz": 8,
    "ngf": 4,
    "ndf": 4,
    "image_size": 16,
    "log_every": 1,
    "sample_every": 10,
    "checkpoint_every": 10,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dcgan") / "run"
    api.train("dcgan", data="digits", out=out, steps=2, overrides=dict(TINY), progress=False)
    return out


def test_onnx_file_is_self_describing(run, tmp_path):
    [path] = api.export(run, "onnx", tmp_path / "g.onnx")
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 18
    assert not list(tmp_path.glob("*.data"))  # one file, weights inside
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["latent_dim"] == "8"
    assert json.loads(meta["image_shape"]) == [1, 16, 16]
    assert json.loads(meta["output_range"]) == [-1.0, 1.0]
    assert [i.name for i in model.graph.input] == ["z"]
    assert [o.name for o in model.graph.output] == ["image"]


def test_onnx_file_carries_no_build_paths(run, tmp_path):
    """A deployed file does not leak the exporting machine's paths or source lines (the
    exporter's per-node stack traces), so its bytes do not depend on where zoo is installed."""
    [path] = api.export(run, "onnx", tmp_path / "g.onnx")
    data = path.read_bytes()
    for where in (Path(zoo.__file__).parents[1], Path(torch.__file__).parent, run, tmp_path):
        assert str(where).encode() not in data
    model = onnx.load(str(path))
    assert not any(node.metadata_props or node.doc_string for node in model.graph.node)


def test_onnx_runs_without_zoo_at_any_batch(run, tmp_path):
    [path] = api.export(run, "onnx", tmp_path / "g.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    loaded = api.load(run)
    for batch in (1, 3, 16):
        z = np.random.default_rng(batch).standard_normal((batch, 8)).astype(np.float32)
        [out] = session.run(["image"], {"z": z})
        with torch.inference_mode():
            ref = loaded.model.generator(torch.from_numpy(z)).numpy()
        assert out.shape == (batch, 1, 16, 16)
        assert np.abs(out - ref).max() <= 1e-4


def test_io_binding_gives_the_outputs_of_a_plain_run(run, tmp_path):
    # the CUDA provider's path (zoo.runtime.devices.OnnxRunner), exercised here on the CPU device
    [path] = api.export(run, "onnx", tmp_path / "g.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = torch.randn(5, 8)
    [bound] = run_bound(session, {"z": z}, ["image"], torch.device("cpu"))
    [plain] = session.run(["image"], {"z": z.numpy()})
    assert bound.shape == (5, 1, 16, 16) and np.array_equal(bound, plain)


def test_failed_validation_is_an_error_and_keeps_nothing(run, tmp_path, monkeypatch):
    real = DCGAN.graphs

    def strict_graphs(self):
        return {
            k: Graph(g.module, g.example, g.outputs, g.metadata, atol=-1.0)
            for k, g in real(self).items()
        }

    monkeypatch.setattr(DCGAN, "graphs", strict_graphs)
    with pytest.raises(ZooError, match="differs from PyTorch"):
        api.export(run, "onnx", tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_safetensors_export_holds_only_inference_weights(run, tmp_path):
    from safetensors import safe_open

    [path] = api.export(run, "safetensors", tmp_path / "g.safetensors")
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
    assert keys and all(k.startswith("generator.") for k in keys)
    info = json.loads(meta["zoo.info"])
    assert info["family"] == "dcgan" and info["config"]["ngf"] == 4
    assert meta["zoo.kind"] == "export"


def test_a_safetensors_export_has_the_same_bytes_in_every_process(run, tmp_path):
    """Reproducible files: safetensors orders its header by hash map, which differs from one
    process to the next; zoo writes it sorted, so the same weights give the same sha256."""
    import subprocess
    import sys

    script = "import sys, zoo.api as a; a.export(sys.argv[1], 'safetensors', sys.argv[2])"
    outs = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for out in outs:
        subprocess.run([sys.executable, "-c", script, str(run), str(out)], check=True)
    assert len({out.read_bytes() for out in outs}) == 1
    from safetensors.torch import load_file

    [path] = api.export(run, "safetensors", tmp_path / "here.safetensors")
    assert load_file(str(path)).keys() == load_file(str(outs[0])).keys()


def test_bad_output_names(run, tmp_path):
    with pytest.raises(ZooError, match=r"\.onnx"):
        api.export(run, "onnx", tmp_path / "g.bin")
    with pytest.raises(ZooError, match=r"\.safetensors"):
        api.export(run, "safetensors", tmp_path / "g.onnx")


def test_mismatched_weights_are_a_clear_error(run, tmp_path):
    from safetensors.torch import load_file, save_file

    [path] = api.export(run, "safetensors", tmp_path / "g.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    first = next(iter(tensors))
    tensors[first] = torch.zeros(3)
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata=meta)
    with pytest.raises(ZooError, match="do not match"):
        api.load(tmp_path / "broken.safetensors")


@pytest.mark.cuda
def test_cuda_training_and_onnx_cuda_provider(tmp_path):
    result = api.train(
        "dcgan",
        data="digits",
        out=tmp_path / "gpu",
        steps=2,
        device="cuda",
        overrides=dict(TINY),
        progress=False,
    )
    assert result.step == 2
    samples = api.sample(tmp_path / "gpu", n=4, runtime="onnx", device="cuda")
    assert samples.provider == "CUDAExecutionProvider"
    reference = api.sample(tmp_path / "gpu", n=4, device="cuda")
    assert (samples.images - reference.images).abs().max() < 1e-2  # TF32 convolutions on GPU


def test_fp16_export_is_a_drop_in_for_float32(run, tmp_path, zoo):
    r = zoo("export", str(run), "--fp16", "--out", str(tmp_path / "g16.onnx"))
    assert r.code == 0, r.err
    [fp32] = api.export(run, "onnx", tmp_path / "g.onnx")
    model = onnx.load(str(tmp_path / "g16.onnx"))
    floats = {i.data_type for i in model.graph.initializer} - {onnx.TensorProto.INT64}
    assert floats == {onnx.TensorProto.FLOAT16}  # weights stored in half precision
    assert all(
        i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input
    )  # float32 in and out, as the float32 file
    assert {p.key: p.value for p in model.metadata_props}["precision"] == "float16"
    half = api.sample(tmp_path / "g16.onnx", n=8, runtime="onnx", device="cpu").images
    full = api.sample(fp32, n=8, runtime="onnx", device="cpu").images
    assert 0 < (half - full).abs().max() <= 1.6e-2


def test_fp16_is_for_onnx_only(run, tmp_path, zoo):
    r = zoo("export", str(run), "--fp16", "--format", "safetensors", "--out", str(tmp_path / "x"))
    assert r.code == 2 and "--fp16 applies to ONNX" in r.err
