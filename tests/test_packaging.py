"""A wheel built from the repo works like the editable install: built-ins, catalogue, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_copy(tmp_path: Path) -> Path:
    """The tracked files in a temporary folder: builds must not leave build/ in the repo."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src, dst = ROOT / name, tmp_path / "src" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(src.readlink())
        elif src.is_file():
            shutil.copy2(src, dst)
    return tmp_path / "src"


def test_wheel_installs_under_the_zoo_namespace(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(source_copy(tmp_path)),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("zoo_gen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "zoo/registry.toml" in names and "zoo/plugins/dcgan.py" in names
    assert "zoo/judge/lenet-mnist.safetensors" in names  # the shipped evaluator
    for part in ("model.safetensors", "README.md", "samples.png"):  # the pretrained weights
        assert f"zoo/weights/dcgan-mnist/{part}" in names
    assert not any(n.startswith(("plugins/", "exporters/", "tests/")) for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import json, zoo, sys; from zoo.cli.main import main; "
        "assert zoo.__file__.startswith(sys.argv[1]), zoo.__file__; main(sys.argv[2:])"
    )

    def zoo(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code, str(target), *args],
            env={**env, "ZOO_OFFLINE": "1"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    listing = json.loads(zoo("list", "--json"))
    assert {"gan-mnist", "dcgan-mnist"} <= {m["name"] for m in listing["models"]}
    assert {"gan", "dcgan"} <= {f["name"] for f in listing["families"]}

    # the installed copy of the pretrained weights, verified, with no network
    assert "shipped with zoo" in zoo("sample", "dcgan-mnist", "-n", "4", "--out", "g.png")
    info = json.loads(zoo("info", "dcgan-mnist", "--json"))
    assert info["weights"]["file"].startswith(str(target))


def test_sdist_carries_the_weights(tmp_path):
    code = (
        "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=source_copy(tmp_path),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    import tarfile

    [sdist] = tmp_path.glob("zoo_gen-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("weights/dcgan-mnist/model.safetensors") for n in names)
    assert any(n.endswith("registry.toml") for n in names)


def test_cpu_requirements_swap_only_onnxruntime():
    """`make ... CPU_ONLY=1` installs these: the project's own requirements (and the dev
    extra's), with onnxruntime in place of onnxruntime-gpu and nothing else changed."""

    def requirements(*args: str) -> list[str]:
        script = ROOT / "scripts" / "requirements.py"
        out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    default, cpu = requirements("--extra", "dev"), requirements("--cpu", "--extra", "dev")
    assert [r for r in default if r.startswith("onnxruntime")] == ["onnxruntime-gpu>=1.20"]
    assert [r for r in cpu if r.startswith("onnxruntime")] == ["onnxruntime>=1.20"]
    assert [r for r in default if "onnxruntime" not in r] == [
        r for r in cpu if "onnxruntime" not in r
    ]
    assert "pytest>=8" in cpu and "pytest>=8" not in requirements("--cpu")
