"""The README's deployment snippet runs as written, without importing zoo or torch."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import zoo.api as api

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(marker: str = "deploy-snippet") -> str:
    text = README.read_text()
    block = text.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_api_snippet_runs_as_written(tmp_path):
    """Pasted into a fresh folder, the README's Python API block works."""
    (tmp_path / "api.py").write_text(snippet("api-snippet") + "\nprint(len(mine.images))\n")
    out = subprocess.run(
        [sys.executable, "api.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("16")
    assert (tmp_path / "dcgan.onnx").is_file() and (tmp_path / "runs/my-dcgan").is_dir()


def test_deploy_snippet_runs_without_zoo(tmp_path):
    run = tmp_path / "run"
    api.train(
        "dcgan",
        data="digits",
        out=run,
        steps=1,
        progress=False,
        overrides={"nz": 8, "ngf": 4, "ndf": 4, "image_size": 16},
    )
    api.export(run, "onnx", tmp_path / "dcgan.onnx")
    # fail if the snippet imports zoo or torch
    guard = "import sys\nsys.modules['zoo'] = None\nsys.modules['torch'] = None\n"
    (tmp_path / "deploy.py").write_text(guard + snippet())
    out = subprocess.run(
        [sys.executable, "deploy.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "running on CPUExecutionProvider" in out.stdout
    images = [np.asarray(Image.open(tmp_path / f"{i}.png")) for i in range(16)]
    assert images[0].shape == (16, 16) and len({im.tobytes() for im in images}) > 1


def shell_commands() -> list[str]:
    """Every `zoo ...` command in the README's ``sh`` blocks, in order, without comments."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines joined
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "zoo":
                    commands.append(shlex.join(words[1:]))
    return list(dict.fromkeys(commands))  # each distinct command once


# these train or time for minutes, install packages or serve until stopped: their arguments
# are parsed, not run
PARSE_ONLY = ("train ", "install ", "bench ", "serve", "sample lsgan-mnist", "export lsgan-mnist")


def test_shell_commands_run_as_written(zoo, tmp_path):
    """A newcomer pasting the README's commands in order: each works (those that train or
    install are checked for valid arguments only)."""
    from zoo.cli.main import cli

    digits = api.sample("dcgan-mnist", n=3, seed=0).images
    (tmp_path / "digits").mkdir()
    for i, name in enumerate(["a.png", "b.png", "digits/0.png"]):
        pixels = ((digits[i, 0] + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        Image.fromarray(pixels).save(tmp_path / name)
    commands = shell_commands()
    assert len(commands) > 15 and "sample dcgan-mnist -n 64 --out grid.png" in commands
    for command in commands:
        args = shlex.split(command)
        if command.startswith(PARSE_ONLY):
            name, *rest = args
            cli.get_command(None, name).make_context(name, rest)  # raises on a bad option
            continue
        result = zoo(*args)
        assert result.code == 0, f"zoo {command}: {result.err}"
