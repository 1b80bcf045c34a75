"""`zoo install` / `zoo uninstall`, and the example plugin installed and driven end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from test_plugins import BROKEN_IMPORT, write_dist

from zoo.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "zoo-lsgan"
ZOO = "import zoo.cli.main; zoo.cli.main.main()"
OFFLINE = ["--pip-arg=--no-deps", "--pip-arg=--no-build-isolation", "--pip-arg=--no-index"]


def run_zoo(python: str | Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env}
    environ.pop("ZOO_PLUGINS", None)
    return subprocess.run(
        [str(python), "-c", ZOO, *args], env=environ, capture_output=True, text=True
    )


def test_install_needs_something_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["install"])
    assert exit_info.value.code == 2
    assert "name a package or path" in capsys.readouterr().err


def test_install_builds_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 3)
    with pytest.raises(SystemExit) as exit_info:
        main(["install", "-U", "--pip-arg=--no-deps", "zoo-x", "-e", "./dev"])
    assert exit_info.value.code == 3  # pip's exit code, passed through
    pip = [sys.executable, "-m", "pip"]
    assert calls == [[*pip, "install", "--upgrade", "--no-deps", "zoo-x", "--editable", "./dev"]]
    with pytest.raises(SystemExit):
        main(["uninstall", "-y", "zoo-gen"])  # installed (pip itself is not run here)
    assert calls[-1] == [*pip, "uninstall", "--yes", "zoo-gen"]


def test_install_of_a_missing_path_fails_with_pips_code(tmp_path: Path) -> None:
    result = run_zoo(sys.executable, "install", *OFFLINE, str(tmp_path / "nothing-here"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr


@pytest.fixture
def small_env(tmp_path: Path) -> Path:
    """A venv without pip of its own that sees this environment's packages (zoo, pip) through
    a .pth file, so installs and uninstalls land in it and not in the test environment."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return Path(purelib)


def test_uninstall_works_with_a_broken_plugin_installed(small_env: Path) -> None:
    python = small_env.parents[2] / "bin" / "python"
    write_dist(
        small_env, "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_IMPORT}
    )
    listed = run_zoo(python, "list")
    assert listed.returncode == 0 and "broken-dist" in listed.stderr
    removed = run_zoo(python, "uninstall", "-y", "broken-dist")
    assert removed.returncode == 0, removed.stderr
    assert not (small_env / "broken_plugin.py").exists()
    again = run_zoo(python, "list")
    assert again.returncode == 0 and "broken-dist" not in again.stderr
    missing = run_zoo(python, "uninstall", "-y", "--pip-arg=--no-such-option", "broken-dist")
    assert missing.returncode == 2  # pip's usage error, passed through


def test_example_plugin_end_to_end(tmp_path: Path) -> None:
    """`zoo install` the example package, then list, train, sample and export with it."""
    source = shutil.copytree(EXAMPLE, tmp_path / "src", ignore=shutil.ignore_patterns("build"))
    site, runs = tmp_path / "site", tmp_path / "runs"
    installed = run_zoo(
        sys.executable, "install", *OFFLINE, f"--pip-arg=--target={site}", str(source)
    )
    assert installed.returncode == 0, installed.stderr
    assert "absent from the `packages` configuration" not in installed.stderr  # quiet build
    env = {"PYTHONPATH": str(site), "ZOO_RUNS": str(runs)}

    def zoo(*args: str) -> str:
        result = run_zoo(sys.executable, *args, **env)
        assert result.returncode == 0, f"zoo {' '.join(args)}: {result.stderr}"
        return result.stdout

    assert "lsgan-mnist" in zoo("list")
    plugins = json.loads(zoo("plugins", "--json"))["plugins"]
    lsgan = next(p for p in plugins if p["distribution"] == "zoo-lsgan")
    assert (lsgan["families"], lsgan["exporters"]) == (["lsgan"], ["npz"])
    assert (lsgan["catalogue"], lsgan["commands"]) == (["lsgan-mnist"], ["npz-inspect"])
    assert lsgan["error"] is None and not lsgan["builtin"]

    small = ["--set", "ngf=8", "--set", "ndf=8", "--set", "nz=16", "--batch-size", "16"]
    zoo("train", "lsgan-mnist", "--steps", "3", "-q", *small)
    run = str(runs / "lsgan-mnist")
    zoo("sample", run, "-n", "4", "--out", str(tmp_path / "grid.png"))
    assert (tmp_path / "grid.png").stat().st_size > 0

    zoo("export", run, "--format", "npz", "--out", str(tmp_path / "g.npz"))
    with np.load(tmp_path / "g.npz", allow_pickle=False) as npz:
        meta = json.loads(str(npz["__zoo__"]))
        assert npz["generator.net.0.weight"].shape == (16, 16, 7, 7)  # 28x28: a 7x7 start
    assert (meta["info"]["family"], meta["info"]["step"]) == ("lsgan", 3)
    inspected = json.loads(zoo("npz-inspect", str(tmp_path / "g.npz"), "--json"))
    assert inspected["graphs"]["generator"]["inputs"] == {"z": [16]}

    zoo("export", run, "--format", "onnx", "--out", str(tmp_path / "g.onnx"))
    assert (tmp_path / "g.onnx").stat().st_size > 0
