"""Resume, Ctrl-C and NaN handling: the guarantees that keep a long run's work safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import zoo.api as api
from zoo.errors import ZooError
from zoo.plugins.gan import GAN
from zoo.training.trainer import Interrupted

TINY = {
    "g_hidden": [16],
    "d_hidden": [16],
    "nz": 4,
    "log_every": 1,
    "sample_every": 100,
    "checkpoint_every": 3,
}


def train(out, steps, **kw):
    return api.train(
        "gan", data="digits", out=out, steps=steps, overrides=dict(TINY), progress=False, **kw
    )


def final_weights(run):
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    return load_file(ckpt / "model.safetensors")


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_continues_exactly(tmp_path):
    train(tmp_path / "straight", 6)
    train(tmp_path / "split", 3)
    api.train("gan", out=tmp_path / "split", steps=6, resume=True, progress=False)
    assert_same(final_weights(tmp_path / "straight"), final_weights(tmp_path / "split"))


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch):
    train(tmp_path / "straight", 6)
    real_step = GAN.train_step

    def ctrl_c_during_step_4(self, batch, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, batch, step)

    monkeypatch.setattr(GAN, "train_step", ctrl_c_during_step_4)
    with pytest.raises(Interrupted, match="interrupted at step 4"):
        train(tmp_path / "run", 6)
    assert (tmp_path / "run" / "checkpoints" / "step-00000004").is_dir()
    monkeypatch.setattr(GAN, "train_step", real_step)
    api.train("gan", out=tmp_path / "run", steps=6, resume=True, progress=False)
    assert_same(final_weights(tmp_path / "straight"), final_weights(tmp_path / "run"))


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = GAN.train_step

    def nan_after_4(self, batch, step):
        losses = real_step(self, batch, step)
        if step >= 4:
            losses["g_loss"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(GAN, "train_step", nan_after_4)
    with pytest.raises(ZooError, match=r"'g_loss' became nan by step 5.*step-00000003"):
        train(tmp_path / "run", 10)
    names = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    assert names == ["step-00000003"]


def test_resume_without_checkpoint_and_changed_settings(tmp_path):
    with pytest.raises(ZooError, match="no checkpoint"):
        api.train("gan", out=tmp_path / "none", steps=2, resume=True, progress=False)
    train(tmp_path / "run", 3)
    with pytest.raises(ZooError, match="only --steps"):
        api.train(
            "gan", out=tmp_path / "run", steps=6, resume=True, progress=False, overrides={"lr": 0.1}
        )


def test_seed_makes_runs_reproducible(tmp_path):
    train(tmp_path / "a", 3, seed=7)
    train(tmp_path / "b", 3, seed=7)
    train(tmp_path / "c", 3, seed=8)
    assert_same(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    a, c = final_weights(tmp_path / "a"), final_weights(tmp_path / "c")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_epochs_set_the_length(tmp_path):
    result = api.train(
        "gan",
        data="digits",
        out=tmp_path / "e",
        epochs=0.1,
        batch_size=64,
        overrides=dict(TINY),
        progress=False,
    )
    assert result.step == 3  # ceil(0.1 * 1438 train images / 64)


def test_old_checkpoints_are_pruned(tmp_path):
    train(tmp_path / "run", 9)
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step-00000006", "step-00000009"]


def test_files_zoo_writes_follow_the_umask(tmp_path):
    train(tmp_path / "run", 3)
    ckpt = tmp_path / "run" / "checkpoints" / "step-00000003"
    mask = os.umask(0)
    os.umask(mask)
    assert (ckpt / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask
    assert ckpt.stat().st_mode & 0o777 == 0o777 & ~mask


def test_channels_last_is_a_layout_not_another_model(tmp_path):
    """memory_format=channels_last trains the same model (to float rounding), and its runs
    resume exactly."""
    conv = {"ngf": 8, "ndf": 8, "nz": 8, "checkpoint_every": 2, "sample_every": 100}

    def dcgan(out, steps, layout=None):
        api.train(
            "dcgan",
            data=None if layout is None else "digits",
            out=tmp_path / out,
            steps=steps,
            overrides={**conv, "batch_size": 16, "image_size": 16, "memory_format": layout}
            if layout
            else None,
            resume=layout is None,
            progress=False,
        )
        return final_weights(tmp_path / out)

    plain, nhwc = dcgan("plain", 2, "contiguous"), dcgan("nhwc", 2, "channels_last")
    assert plain.keys() == nhwc.keys()
    for k in plain:
        torch.testing.assert_close(nhwc[k], plain[k], rtol=1e-3, atol=1e-4)
    assert_same(dcgan("nhwc", 4), dcgan("straight", 4, "channels_last"))


def zoo_process(*args: str) -> subprocess.CompletedProcess:
    """`zoo ARGS` in a fresh interpreter, as users run it: torch.compile's C++ toolchain
    (setuptools) must not meet a distutils that other tests imported into this process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env
    )


def compile_run(out, family, sets, *extra):
    sets = [a for s in sets for a in ("--set", s)]
    return zoo_process("train", family, "--data", "digits", "--steps", "2", "-q",
                       "--out", str(out), *sets, *extra)  # fmt: skip


def test_compiled_training_matches_eager_under_the_same_names(tmp_path):
    sets = [f"{k}={v}" for k, v in TINY.items()]
    for name, extra in (("eager", ()), ("compiled", ("--compile",))):
        r = compile_run(tmp_path / name, "gan", sets, *extra)
        assert r.returncode == 0, r.stderr
    eager, compiled = final_weights(tmp_path / "eager"), final_weights(tmp_path / "compiled")
    assert eager.keys() == compiled.keys()  # checkpoints load with or without --compile
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5)


def test_compile_refuses_a_gradient_penalty_in_one_line(tmp_path):
    sets = ["penalty=gp", "nz=4", "ngf=4", "ndf=4", "image_size=16", "n_critic=1"]
    r = compile_run(tmp_path / "run", "wgan", sets, "--compile")
    assert r.returncode == 2
    assert r.stderr.strip().endswith("gradient penalty), which torch.compile cannot do; "
                                     "train without --compile")  # fmt: skip
    assert "Traceback" not in r.stderr
