"""Data sources: bundled sets, folders, torchvision files made by the test, and errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.contract.imagesets import to_float
from zoo.data.batches import Batches
from zoo.data.loading import frame_like_mnist
from zoo.data.sources import load_dataset
from zoo.errors import UsageError, ZooError


def write_images(folder, n, size=(12, 10), mode="L", seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_bundled_digits_split_is_fixed_and_labelled():
    a, b = load_dataset("digits"), load_dataset("digits", image_size=16)
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape[1:] == (1, 8, 8)
    assert len(a.train) + len(a.test) == 1797 and len(a.test) == 359
    assert torch.equal(a.train.labels, b.train.labels)  # same split at any size
    assert b.spec.size == 16 and b.spec.num_classes == 10


def test_framed_digits_share_mnists_geometry():
    """digits-framed puts scikit-learn's digits where MNIST puts its own: ink inside a 20x20
    box, centre of mass at the centre of 28x28; split and labels as the plain digits'."""
    plain, framed = load_dataset("digits"), load_dataset("digits-framed")
    assert framed.train.images.shape[1:] == (1, 28, 28)
    assert torch.equal(plain.train.labels, framed.train.labels)
    for image in framed.train.images[:200, 0].float():
        ys, xs = torch.nonzero(image, as_tuple=True)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 == 20  # the longer side fits
        cy = (image.sum(1) * torch.arange(28)).sum() / image.sum()
        cx = (image.sum(0) * torch.arange(28)).sum() / image.sum()
        assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_frame_like_mnist_keeps_aspect_and_handles_blank_images():
    tall = np.zeros((2, 8, 8), np.uint8)
    tall[0, :, 3:5] = 255  # a bar 8 high and 2 wide
    out = frame_like_mnist(tall)
    ys, xs = np.nonzero(out[0])
    assert ys.max() - ys.min() + 1 == 20 and xs.max() - xs.min() + 1 == 5
    assert not out[1].any()  # a blank image stays blank


def test_flat_folder_and_class_folders(tmp_path):
    write_images(tmp_path / "flat", 10)
    ds = load_dataset(f"folder:{tmp_path / 'flat'}", image_size=8)
    assert ds.train.labels is None and ds.spec.size == 8 and len(ds.train) + len(ds.test) == 10
    write_images(tmp_path / "cls" / "cat", 5, mode="RGB")
    write_images(tmp_path / "cls" / "dog", 5, mode="RGB", seed=1)
    ds = load_dataset(f"folder:{tmp_path / 'cls'}", image_size=8)
    assert ds.classes == ["cat", "dog"] and ds.spec.channels == 3
    assert set(torch.cat([ds.train.labels, ds.test.labels]).tolist()) == {0, 1}


def test_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    write_images(tmp_path / "mixed", 2, size=(8, 8))
    write_images(tmp_path / "mixed" / "sub", 2, size=(8, 8))
    with pytest.raises(UsageError, match="mixes"):
        load_dataset(f"folder:{tmp_path / 'mixed'}")
    write_images(tmp_path / "sizes", 1, size=(8, 8))
    Image.new("L", (9, 9)).save(tmp_path / "sizes" / "odd.png")
    with pytest.raises(UsageError, match="image_size"):
        load_dataset(f"folder:{tmp_path / 'sizes'}")


def test_unpaired_folders(tmp_path):
    for side in "AB":
        write_images(tmp_path / f"train{side}", 6, size=(8, 8))
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.train_b is not None and len(ds.train) + len(ds.test) == 6
    for side in "AB":  # held-out folders of their own: train keeps every image
        write_images(tmp_path / f"test{side}", 2, size=(8, 8), seed=1)
    ds = load_dataset(f"folder:{tmp_path}")
    assert (len(ds.train), len(ds.test), len(ds.train_b), len(ds.test_b)) == (6, 2, 6, 2)


def _idx(path, array):
    dims = array.shape
    header = struct.pack(">HBB", 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_from_local_files(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    ds = load_dataset("mnist", download=False)
    assert len(ds.train) == 12 and len(ds.test) == 5 and ds.spec.num_classes == 10


def test_torchvision_offline_error_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    with pytest.raises(ZooError, match="ZOO_DATA"):
        load_dataset("fashion-mnist", download=False)


def test_unknown_source_suggests():
    with pytest.raises(UsageError, match="did you mean mnist"):
        load_dataset("mnits")


def test_batches_cover_an_epoch_and_resume():
    ds = load_dataset("digits")
    b = Batches(ds.train, 100, torch.device("cpu"), seed=0)
    x, y = b.next()
    assert x.min() >= -1 and x.max() <= 1 and y.shape == (100,)
    state = b.state_dict()
    after = [b.next()[1] for _ in range(20)]  # crosses an epoch boundary
    b.load_state_dict(state)
    assert all(torch.equal(a, b.next()[1]) for a in after)
    assert torch.equal(
        to_float(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0])
    )


def test_offline_means_no_network_for_torchvision_sets(tmp_path, monkeypatch):
    import socket

    attempts = []
    real_connect = socket.socket.connect

    def record(self, address):
        attempts.append(address)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(ZooError) as err:
        load_dataset("fashion-mnist")  # download=True, as training and zoo eval ask
    assert attempts == [] and "\n" not in str(err.value) and "ZOO_DATA" in str(err.value)
    monkeypatch.setattr(socket.socket, "connect", real_connect)


def test_a_folder_of_images_too_large_once_decoded_is_refused_before_decoding(tmp_path):
    from PIL import Image

    folder = tmp_path / "bomb"
    folder.mkdir()
    Image.new("L", (7000, 7000)).save(folder / "000.png")  # 49 megapixels in about 50 KB
    for i in range(1, 60):
        (folder / f"{i:03d}.png").write_bytes((folder / "000.png").read_bytes())
    with pytest.raises(UsageError, match=r"take 2\.7 GiB decoded, over zoo's limit of 2 GiB"):
        load_dataset(f"folder:{folder}")


def test_an_unreadable_first_image_is_one_clear_line(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    with pytest.raises(UsageError, match=r"cannot read image .*a\.png"):
        load_dataset(f"folder:{folder}")
