"""The CLI end to end on tiny budgets: what a user types and what they get back."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY_GAN


@pytest.fixture
def trained(zoo, tmp_path):
    r = zoo("train", "gan-mnist", "--data", "digits", "--steps", "4", "-q", *TINY_GAN)
    assert r.code == 0, r.err
    return tmp_path / "runs" / "gan-mnist"


def test_startup_does_not_import_torch():
    code = (
        "import sys; from zoo.cli.main import main\n"
        "for args in (['--help'], ['list'], ['--version'], ['info', 'dcgan-mnist'],\n"
        "             ['info', 'vae']):\n"
        "    try: main(args)\n"
        "    except SystemExit as e: assert e.code == 0, (args, e.code)\n"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_list_and_info(zoo):
    r = zoo("list", "--json")
    assert r.code == 0
    data = json.loads(r.out)
    names = {m["name"] for m in data["models"]}
    assert {"gan-mnist", "dcgan-mnist"} <= names
    assert {"gan", "dcgan"} <= {f["name"] for f in data["families"]}
    r = zoo("info", "dcgan-mnist", "--json")
    info = json.loads(r.out)
    assert info["family"] == "dcgan" and info["train"]["image_size"] == 28
    assert info["config"]["lr"] == pytest.approx(2e-4)
    beta1 = next(f for f in info["settings"]["config"] if f["key"] == "beta1")
    assert (beta1["valid"], beta1["help"]) == ("[0, 1)", "Adam beta1")  # what --set checks
    lines = zoo("info", "dcgan").out.splitlines()
    assert any(line.split() == ["nz", "=", "100", ">=", "1", "latent", "size"] for line in lines)


def test_version(zoo):
    assert zoo("--version").out.startswith("zoo, version 0.1.0")


def test_train_writes_run(trained):
    checkpoints = sorted((trained / "checkpoints").iterdir())
    assert [c.name for c in checkpoints] == ["step-00000004"]
    assert (checkpoints[0] / "model.safetensors").is_file()
    assert (trained / "samples" / "step-00000004.png").is_file()
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert {"d_loss", "g_loss"} <= set(rows[0])
    assert json.loads((trained / "config.json").read_text())["family"] == "gan"


def test_train_refuses_to_overwrite_a_run(zoo, trained):
    r = zoo("train", "gan-mnist", "--data", "digits", "--steps", "4", *TINY_GAN)
    assert r.code == 2 and "--resume" in r.err


def test_sample_png_npy_npz(zoo, trained):
    r = zoo("sample", "gan-mnist", "-n", "6", "--seed", "3", "--out", "a.png")
    assert r.code == 0, r.err
    assert Image.open("a.png").mode == "L"
    zoo("sample", str(trained), "-n", "6", "--seed", "3", "--out", "a.npy")
    arr = np.load("a.npy")
    assert arr.shape == (6, 1, 8, 8) and arr.dtype == np.uint8
    zoo("sample", str(trained), "-n", "6", "--seed", "3", "--out", "b.npz")
    assert np.array_equal(np.load("b.npz")["images"], arr)  # same seed, same images
    zoo("sample", str(trained), "-n", "6", "--seed", "4", "--out", "c.npy")
    assert not np.array_equal(np.load("c.npy"), arr)


def test_sample_onnx_runtime_matches_torch(zoo, trained):
    zoo("sample", str(trained), "-n", "5", "--out", "t.npy")
    r = zoo("sample", str(trained), "-n", "5", "--out", "o.npy", "--runtime", "onnx")
    assert r.code == 0, r.err
    assert "ExecutionProvider" in r.out
    diff = np.abs(np.load("t.npy").astype(int) - np.load("o.npy").astype(int))
    assert diff.max() <= 1  # uint8 rounding of outputs equal within 1e-4


def test_export_both_formats_and_sample_from_them(zoo, trained):
    r = zoo("export", str(trained), "--format", "onnx", "--out", "m.onnx")
    assert r.code == 0, r.err
    r = zoo("export", str(trained), "--format", "safetensors", "--out", "m.safetensors")
    assert r.code == 0, r.err
    zoo("sample", str(trained), "-n", "4", "--out", "ref.npy")
    zoo("sample", "m.safetensors", "-n", "4", "--out", "st.npy")
    zoo("sample", "m.onnx", "-n", "4", "--out", "ox.npy", "--runtime", "onnx")
    r = zoo("sample", "m.onnx", "-n", "4", "--out", "auto.npy")  # the runtime follows the file
    assert r.code == 0 and "CPUExecutionProvider" in r.out, r.err
    assert np.array_equal(np.load("auto.npy"), np.load("ox.npy"))
    ref = np.load("ref.npy").astype(int)
    assert np.array_equal(np.load("st.npy"), ref)
    assert np.abs(np.load("ox.npy") - ref).max() <= 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["train", "gan-mnst"], 2, "did you mean gan-mnist"),
        (["train", "gan-mnist", "--set", "lr=fast"], 2, "expected float"),
        (["train", "gan-mnist", "--set", "nope=1"], 2, "keys: augment, auto_bf16, batch_size"),
        (["train", "gan-mnist", "--set", "lr"], 2, "expected KEY=VALUE"),
        (
            ["train", "gan-mnist", "--set", "lr=-1"],
            2,
            "bad value -1.0 for 'lr' in --set: it must be > 0",
        ),
        (["train", "dcgan-mnist", "--set", "beta1=2"], 2, "'beta1' in --set: it must be in [0, 1)"),
        (["train", "gan-mnist", "--set", "nz=0"], 2, "'nz' in --set: it must be >= 1"),
        (["train", "gan-mnist", "--set", "g_hidden=[256, 0]"], 2, "bad value 0 for 'g_hidden'"),
        (["train", "wgan-mnist", "--set", "clip=0"], 2, "'clip' in --set: it must be > 0"),
        (["train", "vae-mnist", "--set", "image_size=-1"], 2, "it must be in [0, 4096]"),
        (["train", "gan-mnist", "--set", "steps=0"], 2, "'steps' in --set: it must be >= 1"),
        (["train", "gan-mnist", "--set", "epochs=-2"], 2, "'epochs' in --set: it must be >= 0"),
        (["train", "gan-mnist", "--data", "imagenet"], 2, "unknown data source"),
        (["train", "gan-mnist", "--device", "tpu"], 2, "device"),
        (["sample", "nothing-here"], 2, "unknown model"),
        (["sample", "https://127.0.0.1:9/x.onnx"], 2, "must name a .safetensors file"),
        (["sample", "file:///etc/passwd"], 2, "only http:// and https:// URLs"),
        (["sample", "gan-mnist", "-n", "0"], 2, "-n must be positive"),
        (["sample", "gan-mnist", "--out", "x.jpg"], 2, ".png"),
        (["export", "gan-mnist", "--format", "tflite", "--out", "x"], 2, None),
        (["bogus"], 2, "no command"),
    ],
)
def test_bad_input_is_one_line_error(zoo, args, code, message):
    r = zoo(*args)
    assert r.code == code
    assert "Traceback" not in r.err
    if message:
        assert message in r.err


def test_wrong_file_type_and_corrupt_checkpoint(zoo, trained, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = zoo("sample", "notes.txt")
    assert r.code == 2 and "not a model" in r.err
    (tmp_path / "fake.safetensors").write_bytes(b"\x00" * 64)
    r = zoo("sample", "fake.safetensors")
    assert r.code == 2 and "safetensors" in r.err
    weights = next((trained / "checkpoints").iterdir()) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    r = zoo("sample", str(trained), "--out", "x.png")
    assert r.code in (1, 2) and "Traceback" not in r.err
    assert "corrupt" in r.err or "not a readable" in r.err


def test_labels_on_unconditional_model(zoo, trained):
    r = zoo("sample", str(trained), "--label", "3")
    assert r.code == 2 and "not conditional" in r.err


def test_debug_shows_traceback(zoo):
    r = zoo("--debug", "sample", "nothing.safetensors")
    assert r.code == 2 and "Traceback" in r.err


def test_uninstall_without_a_terminal_asks_for_yes(zoo):
    r = zoo("uninstall", "zoo-lsgan")
    assert r.code == 2 and "pass -y: zoo uninstall -y zoo-lsgan" in r.err
    assert "Traceback" not in r.err


def test_large_n_streams_to_npy_and_refuses_what_cannot_fit(zoo, tmp_path):
    import numpy as np

    r = zoo("sample", "dcgan-mnist", "-n", "2500", "--out", "big.npy")
    assert r.code == 0, r.err
    big = np.load("big.npy", mmap_mode="r")
    assert big.shape == (2500, 1, 28, 28) and big.dtype == np.uint8
    assert len({bytes(big[i]) for i in (0, 1024, 2048)}) == 3  # chunks draw fresh noise
    zoo("sample", "dcgan-mnist", "-n", "2500", "--out", "again.npy")
    assert np.array_equal(np.load("again.npy"), big)  # the same seed, the same images
    r = zoo("sample", "dcgan-mnist", "-n", "1000000000", "--out", "huge.npy")
    assert r.code == 2 and "GiB free; lower -n" in r.err and not (tmp_path / "huge.npy").exists()
    r = zoo("sample", "dcgan-mnist", "-n", "20000", "--out", "grid.png")
    assert r.code == 2 and "write a .npy file" in r.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "dcgan-mnist", "--seed", "99999999999999999999"], "--seed"),
        (["sample", "cgan-mnist", "--label", "99999999999999999999"], "is out of range"),
        (["sample", "dcgan-mnist", "--label", "3"], "not conditional: drop --label"),
        (["train", "gan-mnist", "--set", "lr=inf"], "it must be finite"),
        (["train", "gan-mnist", "--set", "lr=nan"], "it must be finite"),
        (["train", "gan-mnist", "--set", "steps=99999999999999999999"], "expected int"),
    ],
)
def test_out_of_range_values_are_one_line_errors(zoo, args, message):
    r = zoo(*args)
    assert r.code == 2 and message in r.err and "unexpected" not in r.err
    assert r.err.strip().splitlines()[-1].startswith("Error: ") and "Traceback" not in r.err


def test_a_huge_input_image_is_refused_before_decoding(zoo, tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    for side, message in [
        (10_000, "10000x10000 pixels, over zoo's limit of 50 megapixels"),
        (20_000, "could be decompression bomb"),  # Pillow's own limit comes first
    ]:
        # a grey PNG header of side x side pixels with no pixel data behind it
        header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
        (tmp_path / "bomb.png").write_bytes(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
        )
        r = zoo("sample", "dcgan-mnist", "--input", str(tmp_path / "bomb.png"), "--out", "r.png")
        assert r.code == 2 and message in r.err


def test_the_grid_cap_counts_the_images_label_all_makes(zoo, tmp_path):
    r = zoo(
        "sample", "cgan-mnist", "-n", "1001", "--label", "all", "--out", str(tmp_path / "a.png")
    )
    assert r.code == 2 and "10,010 images are too many for one .png" in r.err
    assert not (tmp_path / "a.png").exists()


def test_bf16_trains_on_the_cpu_and_the_run_says_so(zoo, tmp_path):
    r = zoo("train", "gan", "--data", "digits", "--steps", "2", "--device", "cpu",
            "--precision", "bf16", "--out", str(tmp_path / "r"))  # fmt: skip
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["precision"] == "bf16"
    # a resumed run keeps its precision
    r = zoo("train", "gan", "--out", str(tmp_path / "r"), "--resume", "--precision", "fp32",
            "--steps", "3")  # fmt: skip
    assert r.code == 2 and "trains in bf16" in r.err


def test_a_multi_line_set_is_refused_not_cut(zoo):
    r = zoo("train", "gan", "--data", "digits", "--set", "lr=0.1\nsteps=5", "--out", "r")
    assert r.code == 2 and "one KEY=VALUE per --set, on one line" in r.err


def test_uninstalling_what_is_not_installed_is_an_error(zoo):
    r = zoo("uninstall", "-y", "zoo-no-such-plugin")
    assert r.code == 2 and "zoo-no-such-plugin is not installed" in r.err


def test_a_path_that_cannot_be_written_is_one_line(zoo):
    r = zoo("sample", "dcgan-mnist", "-n", "4", "--out", "/proc/self/no/such/grid.png")
    assert r.code == 1 and r.err.startswith("Error: cannot use /proc/self/no")
    assert len(r.err.strip().splitlines()) == 1 and "unexpected" not in r.err
