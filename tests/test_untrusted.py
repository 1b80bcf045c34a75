"""Model files from elsewhere are hostile until checked (ONNX external data, metadata that
would choose paths, malformed graph tables, empty files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
from safetensors.torch import load_file, save_file

import zoo.api as api
from zoo.checkpoint import read_info


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("model")
    small = {"nz": 8, "ngf": 4, "ndf": 4, "image_size": 16}
    api.train("dcgan", data="digits", out=root / "run", steps=1, progress=False, overrides=small)
    api.export(root / "run", "onnx", root / "g.onnx")
    api.export(root / "run", "safetensors", root / "g.safetensors")
    return {"onnx": root / "g.onnx", "safetensors": root / "g.safetensors"}


def _external(src: Path, dst: Path, location: str) -> None:
    """Point the first initializer at ``location`` beside the model (as an attacker would)."""
    model = onnx.load(str(src))
    tensor = model.graph.initializer[0]
    size = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    dst.write_bytes(model.SerializeToString())


def test_onnx_with_external_data_is_refused(exported, tmp_path, zoo):
    secret = tmp_path / ".secret_env"
    secret.write_bytes(b"API_KEY=hunter2 " * 4096)
    bad = tmp_path / "g.onnx"
    _external(exported["onnx"], bad, ".secret_env")
    r = zoo("sample", str(bad), "--runtime", "onnx", "-n", "4", "--out", str(tmp_path / "x.npy"))
    assert r.code == 2
    assert "in an external file ('.secret_env')" in r.err and "self-contained" in r.err
    assert not (tmp_path / "x.npy").exists()


def test_metadata_names_never_become_paths(exported, tmp_path):
    from zoo.errors import UsageError

    _, meta = read_info(exported["safetensors"])
    info = json.loads(meta["zoo.info"])
    info["name"] = "../../../../tmp/x"
    hostile = tmp_path / "hostile.safetensors"
    save_file(
        load_file(str(exported["safetensors"])),
        str(hostile),
        {**meta, "zoo.info": json.dumps(info)},
    )
    with pytest.raises(UsageError, match=re.escape("name '../../../../tmp/x' is not a valid name")):
        read_info(hostile)


def test_onnx_cache_for_a_weights_file_is_keyed_by_its_hash(exported, tmp_path):
    from zoo.download import cache_dir, sha256_file

    api.sample(exported["safetensors"], 2, runtime="onnx")
    digest = sha256_file(exported["safetensors"])
    assert [p.name for p in (cache_dir() / "onnx").iterdir()] == [digest]
    assert (cache_dir() / "onnx" / digest / "model.onnx").is_file()


def test_graph_table_cannot_reach_outside_the_folder(exported, tmp_path, zoo):
    model = onnx.load(str(exported["onnx"]))
    for prop in model.metadata_props:
        if prop.key == "zoo.graphs":
            graphs = json.loads(prop.value)
            graphs["generator"]["file"] = "../../elsewhere.onnx"
            prop.value = json.dumps(graphs)
    bad = tmp_path / "g.onnx"
    bad.write_bytes(model.SerializeToString())
    r = zoo("sample", str(bad), "--runtime", "onnx", "-n", "2", "--out", str(tmp_path / "x.png"))
    assert r.code == 2 and "zoo.graphs must name each graph's .onnx file beside it" in r.err
    for prop in model.metadata_props:
        if prop.key == "zoo.graphs":
            prop.value = "{not json"
    bad.write_bytes(model.SerializeToString())
    r = zoo("sample", str(bad), "--runtime", "onnx", "-n", "2", "--out", str(tmp_path / "x.png"))
    assert r.code == 2 and "malformed zoo.graphs" in r.err


def test_empty_onnx_file_says_so(tmp_path, zoo):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    r = zoo("sample", str(empty), "--runtime", "onnx", "--out", str(tmp_path / "x.png"))
    assert r.code == 2 and "is empty or missing: not an ONNX model" in r.err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": {"ngf": 100_000}}, "do not match a dcgan built from its config"),
        ({"config": {"ndf": 1_000_000}}, "refusing to allocate it"),
        ({"spec": {"size": 2**20}}, "do not match a dcgan"),  # valid, and 64 TB of weights
        ({"spec": {"size": 1_000_000}}, "DCGAN needs an image size"),
        ({"config": {"nz": "many"}}, "bad value 'many' for 'nz'"),
    ],
)
def test_metadata_is_checked_against_the_tensors_before_allocating(
    exported, tmp_path, change, message
):
    from zoo.errors import ZooError

    _, meta = read_info(exported["safetensors"])
    info = json.loads(meta["zoo.info"])
    for section, values in change.items():
        info[section] |= values
    hostile = tmp_path / "hostile.safetensors"
    tensors = load_file(str(exported["safetensors"]))
    save_file(tensors, str(hostile), {**meta, "zoo.info": json.dumps(info)})
    with pytest.raises(ZooError, match=message):
        api.load(hostile)
