"""Data-parallel training on torch.distributed (gloo, 2 CPU processes): a run split over
processes trains what one process with the whole batch trains, and resumes in any number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo.api as z
from zoo.errors import UsageError
from zoo.store.checkpoint import load_weights

TINY = {
    "gan": ["--set", "g_hidden=[16]", "--set", "d_hidden=[16]", "--set", "nz=4"],
    "vae": ["--set", "nz=4", "--set", "nf=8", "--set", "hidden=32"],
}
COMMON = ["--data", "digits", "--batch-size", "8", "--set", "log_every=1", "-q"]


def zoo_cli(*args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, *(launcher or []), "-m", "zoo", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_weights(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors")


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:  # the same sums in another order: float rounding only
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)


def losses(run: Path) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_two_processes_train_what_one_trains_and_resume_in_one(tmp_path, family):
    """Each of 2 ranks trains 4 of the 8 images of every batch, with its rows of the step's
    noise; the averaged gradients make the same update as one process with all 8."""
    two, one = tmp_path / "two", tmp_path / "one"
    args = ["train", family, *COMMON, *TINY[family], "--steps", "2"]
    if family == "gan":  # the --nproc shortcut
        zoo_cli(*args, "--out", str(two), "--nproc", "2")
    else:
        torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        zoo_cli(*args, "--out", str(two), launcher=torchrun)
    zoo_cli(*args, "--out", str(one))
    assert_same(weights(two, 2), weights(one, 2))
    # rank 0 alone writes the log, with the mean of the ranks' losses
    logged = [losses(run) for run in (two, one)]
    assert [r["step"] for r in logged[0]] == [r["step"] for r in logged[1]]
    for two_row, one_row in zip(*logged):
        assert two_row == pytest.approx(one_row, rel=1e-4)

    # the 2-process checkpoint resumes in 1 process, as if one process had trained it all
    zoo_cli("train", family, "--out", str(two), "--resume", "--steps", "3", "-q")
    zoo_cli("train", family, "--out", str(one), "--resume", "--steps", "3", "-q")
    assert_same(weights(two, 3), weights(one, 3))


def test_batch_size_must_split_over_the_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UsageError, match="batch_size 8 does not split over 3 processes"):
        z.train("gan", data="digits", out=tmp_path / "run", steps=1, batch_size=8)


def test_nproc_inside_torchrun_is_refused(zoo, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    r = zoo("train", "gan", "--nproc", "2")
    assert r.code == 2 and "--nproc inside torchrun: drop --nproc" in r.err


def _clean_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in extra:
            env.pop(name, None)
    return env


def test_sigterm_to_nproc_saves_and_exits_143_without_a_traceback(tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    args = ["train", "gan", *COMMON, *TINY["gan"], "--steps", "100000", "--out", str(run)]
    child = subprocess.Popen([sys.executable, "-m", "zoo", *args, "--nproc", "2"],
                             env=_clean_env(), stderr=subprocess.PIPE, text=True)  # fmt: skip
    metrics = run / "metrics.jsonl"
    end = time.monotonic() + 120
    while not (metrics.exists() and metrics.stat().st_size > 0):
        assert time.monotonic() < end and child.poll() is None, "training did not start"
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    assert list((run / "checkpoints").glob("step-*")), "no checkpoint was saved"


def test_resuming_on_a_count_that_does_not_divide_the_batch_advises_the_count(tmp_path):
    run = tmp_path / "run"
    z.train("gan", data="digits", out=run, steps=1, batch_size=8, progress=False,
            overrides={"g_hidden": [16], "d_hidden": [16], "nz": 4})  # fmt: skip
    env = _clean_env(WORLD_SIZE="3", RANK="0")
    command = [sys.executable, "-m", "zoo", "train", "gan", "--out", str(run), "--resume",
               "--steps", "2"]  # fmt: skip
    r = subprocess.run(command, env=env, capture_output=True, text=True)
    assert r.returncode == 2
    assert "resume it with a process count that divides it (1, 2, 4, 8)" in r.stderr


def test_stale_rank_variables_fail_fast_with_what_to_do(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = _clean_env(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                     ZOO_RENDEZVOUS_TIMEOUT="3")  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "zoo", "train", "gan", *COMMON, *TINY["gan"],
                        "--steps", "1", "--out", str(tmp_path / "r")],
                       env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "could not meet the other processes" in r.stderr
    assert "unset RANK/WORLD_SIZE/MASTER_ADDR to train in one process" in r.stderr
    assert "is waiting for the others" in r.stderr
