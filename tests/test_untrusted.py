"""Model files from elsewhere are hostile until checked (ONNX external data, metadata that
would choose paths, malformed graph tables, empty files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from safetensors.torch import load_file, save_file

import zoo.api as api
from zoo.store.checkpoint import read_info


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
    from zoo.base.files import sha256_file
    from zoo.store.download import cache_dir

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
        ({"spec": {"size": 4096}}, "do not match a dcgan"),  # valid, and far more weights
        ({"spec": {"size": 3000}}, "DCGAN needs an image size"),
        ({"spec": {"size": 2**20}}, "side 1048576 are out of range"),
        ({"spec": {"num_classes": 10**12}}, r"num_classes 1000000000000 is out of range"),
        ({"spec": {"num_classes": -5}}, "num_classes -5 is out of range"),
        ({"spec": {"value_range": [1, -1]}}, "not two finite numbers, low < high"),
        ({"config": "a string"}, "its config is not a JSON object"),
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
        info[section] = info[section] | values if isinstance(values, dict) else values
    hostile = tmp_path / "hostile.safetensors"
    tensors = load_file(str(exported["safetensors"]))
    save_file(tensors, str(hostile), {**meta, "zoo.info": json.dumps(info)})
    with pytest.raises(ZooError, match=message):
        api.load(hostile)


# Hardening, round 2: read once, bound to the weights, whole sets, finite numbers


def _set_meta(src: Path, dst: Path, **values: str) -> None:
    model = onnx.load(str(src))
    for prop in model.metadata_props:
        if prop.key in values:
            prop.value = values[prop.key]
    dst.write_bytes(model.SerializeToString())


def test_the_bytes_checked_are_the_bytes_that_run(exported, tmp_path, monkeypatch):
    """A file swapped for one with external data between the check and the run is never
    read again: the session runs the bytes that were checked."""
    import numpy as np
    import onnxruntime as ort

    from zoo.store import exports as onnx_files

    (tmp_path / ".secret_env").write_bytes(b"API_KEY=hunter2 " * 4096)
    path, evil = tmp_path / "g.onnx", tmp_path / "evil.onnx"
    path.write_bytes(exported["onnx"].read_bytes())
    _external(exported["onnx"], evil, ".secret_env")
    real = onnx_files.scan

    def parse_then_swap(data: bytes):
        found = real(data)
        path.write_bytes(evil.read_bytes())  # the attacker wins the race
        return found

    monkeypatch.setattr(onnx_files, "scan", parse_then_swap)
    session = onnx_files.open_session(path)
    z = np.random.default_rng(0).standard_normal((2, 8), dtype=np.float32)
    expected = ort.InferenceSession(exported["onnx"].read_bytes()).run(None, {"z": z})
    np.testing.assert_array_equal(session.run(None, {"z": z})[0], expected[0])


def test_non_finite_weights_in_an_onnx_file_are_refused(exported, tmp_path, zoo):
    model = onnx.load(str(exported["onnx"]))
    tensor = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    array = onnx.numpy_helper.to_array(tensor).copy()
    array.flat[0] = float("nan")
    tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
    bad = tmp_path / "nan.onnx"
    bad.write_bytes(model.SerializeToString())
    r = zoo("sample", str(bad), "-n", "4", "--out", str(tmp_path / "x.png"))
    assert r.code == 2 and "holds non-finite weights" in r.err
    assert not (tmp_path / "x.png").exists()


def test_non_finite_outputs_are_an_error():
    import numpy as np

    from zoo.errors import ZooError
    from zoo.store.exports import check_finite_outputs

    check_finite_outputs({"image": np.zeros(3, np.float32), "labels": np.arange(3)}, "g")
    with pytest.raises(ZooError, match="produced non-finite values in 'image'"):
        check_finite_outputs({"image": np.array([0.0, np.inf], np.float32)}, "g")


def test_two_weights_files_of_one_checkpoint_folder_get_their_own_exports(exported, tmp_path):
    folder = tmp_path / "run" / "checkpoints" / "step-00000001"
    folder.mkdir(parents=True)
    tensors = load_file(str(exported["safetensors"]))
    _, meta = read_info(exported["safetensors"])
    save_file(tensors, str(folder / "a.safetensors"), meta)
    tensors = {k: v * 0.5 if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, str(folder / "b.safetensors"), meta)
    for name in ("a", "b"):
        via_onnx = api.sample(folder / f"{name}.safetensors", 4, runtime="onnx").images
        via_torch = api.sample(folder / f"{name}.safetensors", 4, runtime="torch").images
        assert (via_onnx - via_torch).abs().max() < 1e-4
    assert len(list((folder / "onnx").iterdir())) == 2


def test_a_file_planted_in_the_export_cache_is_not_run(exported, tmp_path):
    from zoo.base.files import sha256_file
    from zoo.store.download import cache_dir

    slot = cache_dir() / "onnx" / sha256_file(exported["safetensors"])
    slot.mkdir(parents=True)
    planted = tmp_path / "planted.onnx"
    model = onnx.load(str(exported["onnx"]))
    tensor = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    tensor.CopyFrom(
        onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor) * 0, tensor.name)
    )
    planted.write_bytes(model.SerializeToString())
    (slot / "model.onnx").write_bytes(planted.read_bytes())  # no manifest: an older zoo, or not
    via_onnx = api.sample(exported["safetensors"], 4, runtime="onnx").images
    via_torch = api.sample(exported["safetensors"], 4, runtime="torch").images
    assert (via_onnx - via_torch).abs().max() < 1e-4
    assert (slot / "model.onnx").read_bytes() != planted.read_bytes()
    (slot / "model.onnx").write_bytes(planted.read_bytes())  # with a manifest that no longer fits
    assert (
        api.sample(exported["safetensors"], 4, runtime="onnx").images - via_torch
    ).abs().max() < 1e-4


def test_a_file_never_runs_a_sibling_in_its_name(exported, tmp_path, zoo):
    import numpy as np

    graphs = {"generator": {"inputs": {}, "outputs": ["image"], "file": "other.onnx"}}
    _set_meta(exported["onnx"], tmp_path / "mine.onnx", **{"zoo.graphs": json.dumps(graphs)})
    model = onnx.load(str(exported["onnx"]))  # a different generator at the name it gives
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            zeros = onnx.numpy_helper.to_array(tensor) * 0
            tensor.CopyFrom(onnx.numpy_helper.from_array(zeros, tensor.name))
    (tmp_path / "other.onnx").write_bytes(model.SerializeToString())
    for name in ("mine.onnx", "renamed.onnx"):
        if name == "renamed.onnx":  # a plain rename of an export samples the same
            (tmp_path / name).write_bytes(exported["onnx"].read_bytes())
        r = zoo("sample", str(tmp_path / name), "-n", "16", "--out", str(tmp_path / f"{name}.npy"))
        assert r.code == 0, r.err
    r = zoo("sample", str(exported["onnx"]), "-n", "16", "--out", str(tmp_path / "ref.npy"))
    ref = np.load(tmp_path / "ref.npy")
    assert np.array_equal(np.load(tmp_path / "mine.onnx.npy"), ref)
    assert np.array_equal(np.load(tmp_path / "renamed.onnx.npy"), ref)


def test_graph_files_of_two_exports_are_never_run_together(tmp_path, zoo):
    tiny = {"nz": 4, "nf": 8, "hidden": 32, "prior": "normal"}
    api.train("vae", data="digits", out=tmp_path / "run", steps=1, progress=False, overrides=tiny)
    api.export(tmp_path / "run", "onnx", tmp_path / "a.onnx")
    api.train("vae", out=tmp_path / "run", steps=2, progress=False, resume=True)
    api.export(tmp_path / "run", "onnx", tmp_path / "b.onnx")
    assert zoo("sample", str(tmp_path / "a.decoder.onnx"), "-n", "4", "--out", "x.png").code == 0
    (tmp_path / "a.encoder.onnx").write_bytes((tmp_path / "b.encoder.onnx").read_bytes())
    r = zoo("sample", str(tmp_path / "a.decoder.onnx"), "-n", "4", "--out", "y.png")
    assert r.code == 2 and "is not the 'encoder' graph of the export" in r.err


def _placed(tmp_path: Path, where: str) -> Path:
    """A small model whose one external tensor sits in ``where``: every place ONNX can hold
    a tensor (initializers, sparse ones, attributes, subgraphs, functions)."""
    from onnx import TensorProto, helper, numpy_helper

    def external(name: str) -> TensorProto:
        tensor = numpy_helper.from_array(np.zeros(4, np.float32), name)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "secret.bin"
        return tensor

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    initializers, sparse, functions = [], [], []
    const = helper.make_node(
        "Constant", [], ["w"], value=numpy_helper.from_array(np.zeros(4, np.float32))
    )
    if where == "initializer":
        initializers.append(external("w"))
        nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    elif where == "sparse initializer":
        indices = numpy_helper.from_array(np.array([0], np.int64), "i")
        sparse.append(helper.make_sparse_tensor(external("w"), indices, [4]))
        nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    elif where == "attribute":
        nodes = [
            helper.make_node("Constant", [], ["w"], value=external("c")),
            helper.make_node("Add", ["x", "w"], ["y"]),
        ]
    elif where == "subgraph":
        branch = helper.make_graph(
            [helper.make_node("Identity", ["s"], ["o"])], "b", [], [y], [external("s")]
        )
        cond = helper.make_node(
            "Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))
        )
        nodes = [cond, helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)]
    else:  # a function's node
        inner = helper.make_node("Constant", [], ["o"], value=external("f"))
        functions.append(
            helper.make_function("zoo.test", "F", [], ["o"], [inner], [helper.make_opsetid("", 18)])
        )
        nodes = [const, helper.make_node("F", [], ["y"], domain="zoo.test")]
    graph = helper.make_graph(nodes, "g", [x], [y], initializers, sparse_initializer=sparse)
    model = helper.make_model(
        graph,
        functions=functions,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("zoo.test", 1)],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize(
    "where", ["initializer", "sparse initializer", "attribute", "subgraph", "function"]
)
def test_external_data_is_found_in_every_placement(tmp_path, where):
    from zoo.errors import UsageError
    from zoo.store.exports import self_contained

    with pytest.raises(UsageError, match=re.escape("in an external file ('secret.bin')")):
        self_contained(_placed(tmp_path, where))


def test_the_wire_reader_agrees_with_onnx(exported):
    from zoo.base.onnx_wire import scan

    data = exported["onnx"].read_bytes()
    model = onnx.load_from_string(data)
    found = scan(data)
    assert found.metadata == {p.key: p.value for p in model.metadata_props}
    assert [t.name for t in found.tensors] == [t.name for t in model.graph.initializer]
    assert all(t.finite and not t.is_external for t in found.tensors)


def test_truncated_bytes_are_a_clear_error(exported, tmp_path, zoo):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(exported["onnx"].read_bytes()[:1000])
    r = zoo("sample", str(cut), "-n", "4", "--out", str(tmp_path / "x.png"))
    assert r.code == 2 and "is not a readable ONNX file" in r.err


def test_deeply_nested_graph_metadata_is_one_clear_line(exported, tmp_path, zoo):
    deep = "[" * 200_000 + "]" * 200_000
    _set_meta(exported["onnx"], tmp_path / "deep.onnx", **{"zoo.graphs": deep})
    r = zoo("sample", str(tmp_path / "deep.onnx"), "-n", "4", "--out", str(tmp_path / "x.png"))
    assert r.code == 2 and "malformed zoo.graphs" in r.err
