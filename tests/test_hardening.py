"""Training faults: what kill -9, SIGTERM, NaN weights, torn logs, careless resumes and two
processes on one run directory used to break."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

import zoo.api as api
from zoo.errors import UsageError, ZooError
from zoo.plugins.gan import GAN
from zoo.training.trainer import Terminated, claim_run_dir, read_metrics, run_lock

TINY = {"g_hidden": [16], "d_hidden": [16], "nz": 4, "sample_every": 100}


def train(out, steps, resume=False, **settings):
    overrides = {} if resume else {**TINY, "log_every": 2, "checkpoint_every": 4, **settings}
    data = None if resume else "digits"  # a resume keeps the run's data
    return api.train(
        "gan", data=data, out=out, steps=steps, overrides=overrides, progress=False, resume=resume
    )


def steps_logged(run):
    return [r["step"] for r in read_metrics(run / "metrics.jsonl") if "d_loss" in r]


def test_non_finite_weights_are_never_checkpointed_or_sampled(tmp_path, monkeypatch):
    real_step = GAN.train_step

    def poison_at_step_3(self, batch, step):
        losses = real_step(self, batch, step)
        if step == 2:  # the loss stays finite, so only the weights tell
            with torch.no_grad():
                next(self.generator.parameters()).fill_(float("nan"))
        return losses

    monkeypatch.setattr(GAN, "train_step", poison_at_step_3)
    with pytest.raises(ZooError, match=r"is not finite at step 4.*no checkpoint was written"):
        train(tmp_path / "run", 8, log_every=5)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_sampling_non_finite_weights_is_an_error(tmp_path):
    train(tmp_path / "run", 4)
    api.export(tmp_path / "run", "safetensors", tmp_path / "g.safetensors")
    from safetensors.torch import load_file, save_file

    from zoo.store.checkpoint import read_info

    tensors = load_file(str(tmp_path / "g.safetensors"))
    _, meta = read_info(tmp_path / "g.safetensors")
    key = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(tmp_path / "nan.safetensors"), meta)
    with pytest.raises(ZooError, match="holds non-finite weights"):
        api.sample(tmp_path / "nan.safetensors", 2)


def test_resume_cuts_the_log_back_to_its_checkpoint_and_skips_a_torn_line(tmp_path):
    import shutil

    run = tmp_path / "run"
    train(run, 6)  # checkpoints at 4 and 6, rows at 2, 4, 6
    shutil.rmtree(run / "checkpoints" / "step-00000006")  # as if killed after logging 6
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "d_lo')  # a torn last line
    train(run, 8, resume=True)
    assert steps_logged(run) == [2, 4, 6, 8]
    rows = read_metrics(run / "metrics.jsonl")
    clock = [r["seconds"] for r in rows if "seconds" in r]
    assert clock == sorted(clock)  # cumulative across the resume
    json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])  # no torn line left


def test_stale_temporaries_are_cleaned_on_the_next_run(tmp_path):
    run = tmp_path / "run"
    train(run, 4)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process killed while writing: dead, on this host
    stale = run / "checkpoints" / f".step-00000030.{socket.gethostname()}-{child.pid}.x1y2.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    train(run, 6, resume=True)
    assert not stale.exists()


def test_sigterm_saves_and_exits_143(tmp_path, monkeypatch):
    real_step = GAN.train_step

    def term_during_step_3(self, batch, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self, batch, step)

    monkeypatch.setattr(GAN, "train_step", term_during_step_3)
    with pytest.raises(Terminated, match="terminated at step 3") as err:
        train(tmp_path / "run", 10)
    assert err.value.exit_code == 143
    assert (tmp_path / "run" / "checkpoints" / "step-00000003").is_dir()


def test_resume_refuses_what_it_would_ignore(tmp_path):
    run = tmp_path / "run"
    train(run, 6)
    cases = [
        (dict(target="vae-mnist"), "trains gan, not vae-mnist"),
        (dict(seed=99), "was started with --seed 0; drop --seed 99"),
        (dict(steps=4), "already at step 6; pass --steps above 6"),
        (dict(precision="bf16"), "trains in fp32"),
    ]
    for kwargs, message in cases:
        args = {"target": "gan", "steps": 10, **kwargs}
        with pytest.raises(UsageError, match=message):
            api.train(args.pop("target"), out=run, resume=True, progress=False, **args)
    with pytest.raises(UsageError, match="start a new run with --out DIR"):
        api.train("gan", out=run, resume=True, steps=10, overrides={"lr": 1e-5})


def test_one_training_process_per_run_directory(tmp_path):
    run = tmp_path / "run"
    claim_run_dir(run)
    with run_lock(run), pytest.raises(ZooError, match=rf"another process \(pid {os.getpid()}\)"):
        train(run, 2)


def test_a_bad_name_touches_nothing_on_disk(tmp_path, zoo):
    r = zoo("train", "dcgan-mnsit")
    assert r.code == 2 and "did you mean dcgan-mnist" in r.err
    r = zoo("train", "../../escaped-dir")
    assert r.code == 2
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "escaped-dir").exists()


def test_progress_lines_when_not_on_a_terminal(tmp_path, capsys):
    overrides = {**TINY, "log_every": 1, "checkpoint_every": 100}
    api.train("gan", data="digits", out=tmp_path / "run", steps=40, overrides=overrides)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("zoo: step")]
    assert len(lines) == 20 and lines[-1].startswith("zoo: step 40/40 (100%)")
    assert "steps/s, ETA" in lines[0] and "d_loss" in lines[0]


FILE_LIMIT = """
import resource, signal, sys
from pathlib import Path
import zoo.api as api
from zoo.errors import ZooError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
run = Path(sys.argv[1])
tiny = {"g_hidden": [16], "d_hidden": [16], "nz": 4, "sample_every": 100, "log_every": 1,
        "checkpoint_every": 2}
api.train("gan", data="digits", out=run, steps=2, overrides=tiny, progress=False)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # a checkpoint needs more
try:
    api.train("gan", out=run, steps=4, resume=True, progress=False)
except ZooError as exc:
    print(exc)
"""


def test_a_full_disk_names_the_file_and_the_intact_checkpoint(tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", FILE_LIMIT, str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    message = out.stdout.strip()
    assert "cannot write the checkpoint of step 4" in message, out.stderr
    assert "file too large" in message or "refused the write" in message
    assert "the last good checkpoint (step-00000002) is intact" in message
    assert "continue with --resume" in message
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step-00000002"]  # nothing half-written left beside it


def test_a_write_killed_outright_is_swept_by_the_next_one(tmp_path):
    # kill -9 during an atomic write (an export, a download, a checkpoint) leaves its
    # temporary behind; the next write beside the same target removes it, and leaves alone
    # what a live process is writing
    import subprocess
    import sys

    code = (
        "import sys, time; from zoo.base.files import atomic_path, staging_dir\n"
        "with atomic_path(sys.argv[1]) as tmp, staging_dir(sys.argv[1]) as stage:\n"
        "    tmp.write_text('half'); print('writing', flush=True); time.sleep(60)\n"
    )
    target = tmp_path / "model.onnx"
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"writing"
    child.kill()
    child.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(f"-{child.pid}." in name for name in left)

    from zoo.base.files import atomic_path

    live = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
    try:
        assert live.stdout.readline().strip() == b"writing"
        with atomic_path(target) as tmp:
            tmp.write_text("whole")
        names = sorted(p.name for p in tmp_path.iterdir())
        assert "model.onnx" in names and target.read_text() == "whole"
        assert not any(f"-{child.pid}." in name for name in names)
        assert sum(f"-{live.pid}." in name for name in names) == 2
    finally:
        live.kill()
        live.wait()


def test_resume_accepts_the_runs_own_settings_repeated(tmp_path):
    run = tmp_path / "run"
    train(run, 4)
    same = {**TINY, "log_every": 2, "checkpoint_every": 4}
    result = api.train("gan", data="digits", out=run, steps=6, overrides=same, resume=True,
                       progress=False)  # fmt: skip
    assert result.step == 6


def test_hand_edits_to_config_json_are_kept_aside_and_said(tmp_path, capsys):
    run = tmp_path / "run"
    train(run, 4)
    config = json.loads((run / "config.json").read_text())
    config["config"]["lr"] = 0.5
    (run / "config.json").write_text(json.dumps(config))
    train(run, 6, resume=True)
    assert "config.json was edited by hand" in capsys.readouterr().err
    assert json.loads((run / "config.edited.json").read_text())["config"]["lr"] == 0.5
    assert json.loads((run / "config.json").read_text())["config"]["lr"] != 0.5


def _rewrite_checkpoint(run, change):
    from safetensors.torch import load_file, save_file

    from zoo.base.runs import latest_checkpoint

    path = latest_checkpoint(run) / "model.safetensors"
    from zoo.store.checkpoint import read_info

    _, meta = read_info(path)
    info = json.loads(meta["zoo.info"])
    change(info["train"])
    save_file(load_file(str(path)), str(path), {**meta, "zoo.info": json.dumps(info)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["settings"].update(batch_size=0), "batch_size.*must be >= 1"),
        (lambda t: t.pop("seed"), "records no valid seed: it was not written by zoo train"),
    ],
)
def test_a_checkpoints_bad_training_record_is_one_clear_line(tmp_path, change, message):
    run = tmp_path / "run"
    train(run, 4)
    _rewrite_checkpoint(run, change)
    with pytest.raises(UsageError, match=message):
        train(run, 6, resume=True)
