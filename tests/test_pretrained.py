"""The pretrained weights that ship with zoo: present, verified, small, and used by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo.api
import zoo.contract.model
from zoo.contract.metadata import FORMAT_KEY, FORMAT_VERSION
from zoo.evaluation.publish import BLOCK, record
from zoo.registry.catalogue import builtin_catalogue, load_catalogue_file, shipped_weights_dir
from zoo.store.checkpoint import read_info, save_weights
from zoo.store.download import check_file
from zoo.store.sources import resolve

ROOT = Path(__file__).resolve().parent.parent
LSGAN_CATALOGUE = ROOT / "examples/zoo-lsgan/zoo_lsgan/registry.toml"
SHIPPED = [e for e in builtin_catalogue() if e.weights is not None]
EVERY = [*SHIPPED, *(e for e in load_catalogue_file(LSGAN_CATALOGUE) if e.weights)]
BUDGET = 40 * 2**20


def test_every_catalogue_model_ships_weights():
    assert {e.name for e in builtin_catalogue()} == {e.name for e in SHIPPED}
    assert "lsgan-mnist" in {e.name for e in EVERY}


@pytest.mark.parametrize("entry", EVERY, ids=lambda e: e.name)
def test_shipped_files_match_the_catalogue(entry):
    w = entry.weights
    folder = Path(w.file).parent
    assert check_file(Path(w.file), w.sha256, w.size) is None
    assert (folder / "samples.png").is_file()
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0")
    assert w.sha256 in card and f"zoo train {entry.name}" in card
    assert w.metrics["fld"] > 0 and w.train_seconds > 0
    info, meta = read_info(Path(w.file))
    assert info.name == entry.name and 1 <= int(meta[FORMAT_KEY]) <= FORMAT_VERSION


def test_the_whole_set_stays_small():
    assert sum(e.weights.size for e in EVERY) <= BUDGET


def test_builtin_files_live_in_the_package():
    assert all(Path(e.weights.file).parent.parent == shipped_weights_dir() for e in SHIPPED)


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_sample_by_name_offline_uses_the_shipped_weights(entry, zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    r = zoo("sample", entry.name, "-n", "16", "--out", str(tmp_path / "grid.png"))
    assert r.code == 0, r.err
    assert f"pretrained {entry.name} weights shipped with zoo" in r.out
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    entry = SHIPPED[0]
    copy = tmp_path / "model.safetensors"
    shutil.copyfile(entry.weights.file, copy)
    with open(copy, "r+b") as f:  # flip one byte of a tensor, keep the size
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    from dataclasses import replace

    from zoo.errors import ZooError
    from zoo.store.sources import pretrained

    damaged = replace(entry, weights=replace(entry.weights, file=str(copy)))
    with pytest.raises(ZooError, match="reinstall"):
        pretrained(damaged)


def test_api_and_torch_hub_load_the_pretrained_generator():
    samples = zoo.api.sample("dcgan-mnist", n=4, seed=0)
    assert samples.images.shape == (4, 1, 28, 28)
    generator = torch.hub.load(str(ROOT), "dcgan_mnist", source="local", trust_repo=True)
    with torch.no_grad():
        direct = generator(torch.randn(4, 100, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(direct, samples.images)
    whole = torch.hub.load(str(ROOT), "dcgan_mnist", source="local", graph="all")
    assert isinstance(whole, zoo.contract.model.GenerativeModel)
    with pytest.raises(ValueError, match="has graphs generator, not 'decoder'"):
        torch.hub.load(str(ROOT), "dcgan_mnist", source="local", graph="decoder")


def test_loading_stays_clear_of_the_compiler():
    """Loading every pretrained model and sampling through torch never imports torch._dynamo
    (about 2 s, which building the models' skeletons on the meta device used to pull in)."""
    code = (
        "import sys, zoo.api\n"
        f"for name in {[e.name for e in SHIPPED]!r}: zoo.api.load(name)\n"
        "zoo.api.sample('dcgan-mnist', n=2, runtime='torch')\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'\n"
    )
    env = {**os.environ, "ZOO_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]


def test_resolve_says_where_weights_come_from(tmp_path):
    assert resolve("dcgan-mnist").origin == "pretrained dcgan-mnist weights shipped with zoo"
    loaded = zoo.api.load("dcgan-mnist")
    assert loaded.origin == resolve("dcgan-mnist").origin


def _rewrite_format(src: Path, dst: Path, version: str | None) -> None:
    _, meta = read_info(src)
    from safetensors.torch import load_file, save_file

    meta = {k: v for k, v in meta.items() if k != FORMAT_KEY}
    if version is not None:
        meta[FORMAT_KEY] = version
    save_file(load_file(str(src)), str(dst), metadata=meta)


def test_metadata_format_versions(tmp_path):
    from zoo.errors import UsageError

    src = Path(SHIPPED[0].weights.file)
    old, new = tmp_path / "old.safetensors", tmp_path / "new.safetensors"
    _rewrite_format(src, old, None)  # files written before the key existed read as version 0
    assert read_info(old)[0].name == SHIPPED[0].name
    _rewrite_format(src, new, str(FORMAT_VERSION + 1))
    with pytest.raises(UsageError, match="newer than this zoo reads"):
        read_info(new)


def test_record_keeps_other_tables_and_writes_valid_toml(tmp_path):
    import tomllib

    catalogue = tmp_path / "registry.toml"
    catalogue.write_text('[models.a]\nfamily = "gan"\ndata = "mnist-5k"\n')
    one = {"file": "a/model.safetensors", "sha256": "0" * 64, "size": 10, "metrics": {"fld": 1.5}}
    record(catalogue, "a", one)
    record(catalogue, "a", {**one, "size": 11})
    text = catalogue.read_text()
    assert text.count(BLOCK) == 1
    doc = tomllib.loads(text)
    assert doc["models"]["a"]["weights"]["size"] == 11
    assert doc["models"]["a"]["family"] == "gan"
    entries = load_catalogue_file(catalogue)
    assert entries[0].weights.file == str(tmp_path / "weights" / "a/model.safetensors")
    assert json.loads(json.dumps(entries[0].weights.metrics)) == {"fld": 1.5}


def test_fp16_weights_load_as_float32(tmp_path):
    from zoo.store.checkpoint import load_weights

    info, _ = read_info(Path(SHIPPED[0].weights.file))
    path = tmp_path / "half.safetensors"
    save_weights(path, {"w": torch.ones(2, dtype=torch.float16)}, info, "pretrained")
    assert load_weights(path)["w"].dtype == torch.float32
