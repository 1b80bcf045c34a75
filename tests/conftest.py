"""Shared fixtures: an isolated working directory and an in-process CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Small thread pools: the suite runs on 2 cores, where oversubscribed OpenMP crawls.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A GAN small enough to train a few steps in well under a second.
TINY_GAN = [
    "--set",
    "g_hidden=[16]",
    "--set",
    "d_hidden=[16]",
    "--set",
    "nz=4",
    "--set",
    "log_every=2",
    "--set",
    "sample_every=4",
    "--set",
    "checkpoint_every=4",
]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test runs in its own directory with its own runs/ and cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    for name in ("ZOO_OFFLINE", "ZOO_WEIGHTS_URL", "ZOO_DOWNLOAD_TIMEOUT", "ZOO_DOWNLOAD_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    from zoo.registry.discovery import set_registry

    set_registry(None)  # each test sees the plugins its own environment loads
    yield tmp_path
    set_registry(None)


@pytest.fixture
def zoo(capsys):
    """Run `zoo ARGS...` in-process through the real entry point; returns exit code and output."""
    from zoo.cli.main import main

    def run(*args: str) -> Result:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def zoo_no_torch():
    """Run `zoo ARGS...` in a fresh interpreter that must not import torch: the call fails
    (with "torch imported" on stderr) if it does, or if zoo exits non-zero."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        code = (
            "import sys; from zoo.cli.main import main\n"
            f"try: main({list(args)!r})\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported'"
        )
        command = [sys.executable, "-c", code]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)

    return run
