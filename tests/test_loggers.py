"""Training loggers: zoo's csv and tensorboard, and a plugin's own (register_loggers)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import zoo.api as z
from zoo import LoggerSpec, plugin
from zoo.errors import UsageError
from zoo.registry.discovery import BUILTIN_DIST, PluginRecord, build_registry, set_registry

TINY = {"g_hidden": [8], "d_hidden": [8], "nz": 4, "log_every": 2, "sample_every": 2}
CALLS: list[tuple] = []


class Recorder:
    """A third-party logger: records what zoo hands it."""

    def __init__(self, run_dir: Path, config: dict, start_step: int):
        CALLS.append(("open", config["family"], start_step))

    def log(self, step, values):
        CALLS.append(("log", step, sorted(values)))

    def image(self, step, name, path):
        CALLS.append(("image", step, name, Path(path).is_file()))

    def close(self):
        CALLS.append(("close",))


def train(out: Path, steps: int, log: list[str], resume: bool = False):
    if resume:
        return z.train("gan", out=out, steps=steps, resume=True, progress=False, log=log)
    return z.train(
        "gan", data="digits", out=out, steps=steps, overrides=TINY, progress=False, log=log
    )


def test_a_plugin_logger_gets_metrics_grids_and_the_config(tmp_path):
    obj = plugin(LoggerSpec("recorder", "records calls", f"{__name__}:Recorder"))
    record = PluginRecord("recorder", "recorder-dist", "1.0", __name__, False)
    set_registry(build_registry(extra=[(obj, record)]))
    CALLS.clear()
    train(tmp_path / "run", 4, ["recorder"])
    assert CALLS[0] == ("open", "gan", 0) and CALLS[-1] == ("close",)
    losses = ["d_fake", "d_loss", "d_real", "g_loss", "images_per_s", "seconds"]
    assert ("log", 2, losses) in CALLS and ("log", 4, losses) in CALLS
    assert ("image", 2, "samples", True) in CALLS and ("image", 4, "samples", True) in CALLS


def test_csv_log_continues_a_resumed_run_without_repeats(tmp_path):
    run = train(tmp_path / "run", 4, ["csv"]).run_dir
    train(run, 6, ["csv"], resume=True)
    with (run / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps) and set(steps) == {2, 4, 6}
    assert sum(1 for r in rows if r["step"] == "4" and r["name"] == "g_loss") == 1


def test_tensorboard_log_writes_scalars_and_grids(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tmp_path / "run", 4, ["tensorboard"]).run_dir
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("g_loss")] == [2, 4]
    assert [e.step for e in events.Images("samples")] == [2, 4]


def test_an_unknown_logger_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", BUILTIN_DIST)  # the list below, whatever else is installed
    with pytest.raises(UsageError, match="unknown logger 'wandb'; loggers: csv, tensorboard"):
        train(tmp_path / "run", 2, ["wandb"])
    assert not (tmp_path / "run").exists()


class Failing(Recorder):
    """A logger that fails the way plugins do: ``FAULTS`` maps a method to what it raises."""

    FAULTS: dict[str, BaseException] = {}

    def __init__(self, run_dir: Path, config: dict, start_step: int):
        if "init" in self.FAULTS:
            raise self.FAULTS["init"]
        super().__init__(run_dir, config, start_step)

    def log(self, step, values):
        if step >= 4 and "log" in self.FAULTS:
            raise self.FAULTS["log"]
        super().log(step, values)

    def image(self, step, name, path):
        if "image" in self.FAULTS:
            raise self.FAULTS["image"]

    def close(self):
        if "close" in self.FAULTS:
            raise self.FAULTS["close"]


def _with_failing(monkeypatch, **faults: BaseException) -> None:
    monkeypatch.setattr(Failing, "FAULTS", faults)
    obj = plugin(LoggerSpec("flaky", "fails", f"{__name__}:Failing"))
    record = PluginRecord("flaky", "flaky-dist", "0.3", __name__, False)
    set_registry(build_registry(extra=[(obj, record)]))


@pytest.mark.parametrize(
    "faults",
    [{"log": SystemExit(0)}, {"log": RuntimeError("disk full")}, {"image": ValueError("x")}],
)
def test_a_failing_logger_is_named_once_disabled_and_training_goes_on(
    tmp_path, monkeypatch, capsys, faults
):
    _with_failing(monkeypatch, **faults)
    result = train(tmp_path / "run", 8, ["flaky"])
    assert result.step == 8  # every step trained and checkpointed
    err = capsys.readouterr().err
    assert err.count("logger 'flaky' of plugin 'flaky' (flaky-dist 0.3) failed in") == 1
    assert "it is disabled and training goes on" in err


def test_a_failing_close_does_not_fail_a_finished_run(tmp_path, monkeypatch, capsys):
    _with_failing(monkeypatch, close=OSError("gone"))
    assert train(tmp_path / "run", 4, ["flaky"]).step == 4
    assert "failed in close(): OSError: gone" in capsys.readouterr().err


def test_strict_plugins_stop_the_run_with_a_plugin_error(tmp_path, monkeypatch):
    from zoo.registry.discovery import PluginError

    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    _with_failing(monkeypatch, log=RuntimeError("disk full"))
    with pytest.raises(PluginError, match="failed in log\\(\\): RuntimeError: disk full"):
        train(tmp_path / "run", 8, ["flaky"])


def test_a_logger_failing_to_start_is_one_line_naming_its_plugin(tmp_path, monkeypatch, zoo):
    _with_failing(monkeypatch, init=KeyError("api_key"))
    r = zoo("train", "gan", "--data", "digits", "--steps", "2", "--log", "flaky", "--out", "r")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "logger 'flaky' of plugin 'flaky' (flaky-dist 0.3) failed to start" in r.err
