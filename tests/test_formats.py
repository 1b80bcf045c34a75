"""Files keep loading across metadata format versions: tests/fixtures/format-1 holds files
written by the first release that published weights (format 1: a tiny GAN and VAE, their
safetensors and ONNX exports, and the samples they gave for -n 6 --seed 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from zoo.contract.metadata import FORMAT_KEY, FORMAT_VERSION, GRAPHS_KEY, read_graphs
from zoo.store.exports import graph_files, onnx_metadata

FIXTURES = Path(__file__).parent / "fixtures" / "format-1"


def safetensors_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


@pytest.mark.parametrize(
    ("family", "file", "runtime"),
    [
        ("gan", "gan-v1.safetensors", "torch"),
        ("gan", "gan-v1.onnx", "onnx"),
        ("vae", "vae-v1.safetensors", "torch"),
        ("vae", "vae-v1.decoder.onnx", "onnx"),
    ],
)
def test_format_1_files_load_and_sample_the_same(zoo, tmp_path, family, file, runtime):
    for f in FIXTURES.glob(f"{family}-v1*"):
        shutil.copy(f, tmp_path)
    r = zoo("sample", file, "-n", "6", "--seed", "3", "--runtime", runtime, "--out", "s.npy")
    assert r.code == 0, r.err
    now, then = np.load("s.npy").astype(int), np.load(FIXTURES / f"{family}-v1.samples.npy")
    # ONNX files now sample without torch, with its draws mirrored in NumPy to float rounding
    assert np.abs(now - then).max() <= (1 if runtime == "onnx" else 0)


def test_format_1_graph_layouts_read_as_the_current_one():
    onnx_graphs = read_graphs(onnx_metadata(FIXTURES / "vae-v1.encoder.onnx"), "vae")
    assert {n: g["file"] for n, g in onnx_graphs.items()} == {
        "encoder": "vae-v1.encoder.onnx",
        "decoder": "vae-v1.decoder.onnx",
    }
    weights_graphs = read_graphs(safetensors_metadata(FIXTURES / "vae-v1.safetensors"), "vae")
    assert weights_graphs["decoder"]["inputs"] == {"z": {"shape": ["batch", 4]}}
    assert set(graph_files(FIXTURES / "vae-v1.decoder.onnx")) == {"encoder", "decoder"}


def test_new_files_share_one_graph_layout(zoo, tmp_path):
    """ONNX and safetensors exports describe their graphs the same way (plus the ONNX file)."""
    for f in FIXTURES.glob("vae-v1.safetensors"):
        shutil.copy(f, tmp_path)
    assert zoo("export", "vae-v1.safetensors", "--format", "onnx", "--out", "v.onnx").code == 0
    assert zoo("export", "vae-v1.safetensors", "--format", "safetensors", "--out", "v.st").code
    assert (
        zoo(
            "export", "vae-v1.safetensors", "--format", "safetensors", "--out", "v2.safetensors"
        ).code
        == 0
    )
    onnx_meta = onnx_metadata(tmp_path / "v.decoder.onnx")
    weights_meta = safetensors_metadata(tmp_path / "v2.safetensors")
    assert onnx_meta[FORMAT_KEY] == weights_meta[FORMAT_KEY] == str(FORMAT_VERSION)
    onnx_graphs = json.loads(onnx_meta[GRAPHS_KEY])
    weights_graphs = json.loads(weights_meta[GRAPHS_KEY])
    assert onnx_graphs["decoder"].pop("file") == "v.decoder.onnx"
    assert onnx_graphs["encoder"].pop("file") == "v.encoder.onnx"
    assert onnx_graphs == weights_graphs
    assert weights_graphs["decoder"] == {
        "inputs": {"z": {"dtype": "float32", "shape": ["batch", 4]}},
        "outputs": ["image"],
    }
