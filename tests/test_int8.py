"""`zoo export --int8`: the sampling graph statically quantised (QDQ), calibrated on the
prior's draws, kept only if its samples score like the float32 graph's."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from zoo.errors import ZooError
from zoo.evaluation import quantized


def test_an_int8_export_is_quantised_scored_and_sampled_without_torch(zoo, zoo_no_torch, tmp_path):
    r = zoo("export", "gan-mnist", "--int8", "--out", str(tmp_path / "gan.onnx"))
    assert r.code == 0, r.err
    scores = r.out.strip().splitlines()[-1]
    assert scores.startswith("int8 FLD") and "float32" in scores
    model = onnx.load(str(tmp_path / "gan.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ, run by integer kernels
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["precision"] == "int8" and 0 < float(meta["int8_mean_abs_diff"]) < 0.1
    weights = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert weights, "the weights are stored in int8"
    # it samples like any export: without torch, in the CPU provider
    done = zoo_no_torch("sample", "gan.onnx", "-n", "8", "--out", "s.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "s.npz")["images"].shape == (8, 1, 28, 28)


def test_an_int8_graph_that_scores_worse_is_not_kept(tmp_path, monkeypatch):
    out = tmp_path / "gan.onnx"
    out.write_bytes(b"the user's earlier export")
    monkeypatch.setattr(quantized, "fld_limit", lambda float_fld: -1.0)
    with pytest.raises(ZooError, match="nothing was written; export in float32"):
        quantized.export_int8("gan-mnist", out)
    assert out.read_bytes() == b"the user's earlier export"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "cache")  # ZOO_CACHE
    assert left == ["gan.onnx"]  # no staging folder left behind


def test_int8_needs_a_latent_and_layers_with_integer_kernels(zoo, tmp_path):
    r = zoo("export", "cyclegan-digits", "--int8", "--out", str(tmp_path / "c.onnx"))
    assert r.code == 2 and "no graph that samples from a latent z" in r.err
    # DCGAN's generator is transposed convolutions only, which onnxruntime runs in float
    r = zoo("export", "dcgan-mnist", "--int8", "--out", str(tmp_path / "d.onnx"))
    assert r.code == 2 and "no layer onnxruntime runs in int8" in r.err
    r = zoo("export", "gan-mnist", "--int8", "--fp16", "--out", str(tmp_path / "g.onnx"))
    assert r.code == 2 and "pick one" in r.err
    r = zoo("export", "gan-mnist", "--int8", "--format", "safetensors", "--out", "g.st")
    assert r.code == 2 and "--int8 applies to ONNX" in r.err
    assert list(tmp_path.iterdir()) == []


def test_the_limit_is_ten_percent_or_one():
    assert quantized.fld_limit(5.0) == 6.0 and quantized.fld_limit(30.0) == pytest.approx(33.0)
    assert json.dumps(quantized.RELATIVE_TOLERANCE) == "0.1"
