"""A wheel built from the repo works like the editable install: built-ins, catalogue, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
            str(ROOT),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("zoo_gen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "zoo/registry.toml" in names and "zoo/plugins/dcgan.py" in names
    assert "zoo/evaluator/lenet-mnist.safetensors" in names  # the shipped evaluator
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
        "import json, zoo, sys; from zoo.cli import main; "
        "assert zoo.__file__.startswith(sys.argv[1]), zoo.__file__; main(['list', '--json'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    listing = json.loads(out.stdout)
    assert {"gan-mnist", "dcgan-mnist"} <= {m["name"] for m in listing["models"]}
    assert {"gan", "dcgan"} <= {f["name"] for f in listing["families"]}
