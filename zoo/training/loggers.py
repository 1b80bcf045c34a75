"""Where training metrics, sample grids and hyperparameters go besides the run's own record.

Every run writes metrics.jsonl (losses every log_every steps, held-out metrics at checkpoints):
resume, `zoo eval` and loss.png read it, so it is always on. `zoo train --log NAME` adds
loggers registered through the ``register_loggers`` hook; zoo's own are ``csv`` and
``tensorboard`` (with the tensorboard package installed). A logger is made by calling its
target as ``target(run_dir, config, start_step)``: ``config`` holds the run's settings and
hyperparameters, ``start_step`` is 0 or the step a resumed run continues from (a logger drops
what it holds beyond it, since those steps are trained again). Only rank 0 of a distributed
run logs.

A logger is a plugin's code running inside the training loop, so its faults are contained
like other plugin faults (`GuardedLogger`): one that fails (``SystemExit`` included) is named
once on stderr and disabled, and training goes on; with ZOO_STRICT_PLUGINS=1 the fault stops
the run with a plugin error instead (its last checkpoint stays as it was). A constructor that
fails stops the run before anything is trained.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Protocol

from zoo.errors import UsageError


class Logger(Protocol):
    def log(self, step: int, values: dict[str, float]) -> None:
        """Scalars at ``step`` (losses, images/s, held-out metrics)."""

    def image(self, step: int, name: str, path: Path) -> None:
        """A sample grid written at ``step`` to ``path`` (a PNG)."""

    def close(self) -> None: ...


class CSVLogger:
    """metrics.csv in the run directory, one ``step,name,value`` row per scalar (a long
    table: the names logged can change from row to row, e.g. at checkpoints)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], start_step: int = 0):
        self.path = run_dir / "metrics.csv"
        rows = []
        if start_step and self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        self.file = self.path.open("w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["step", "name", "value"])
        self.writer.writerows([r["step"], r["name"], r["value"]] for r in rows)
        self.file.flush()

    def log(self, step: int, values: dict[str, float]) -> None:
        self.writer.writerows([step, name, repr(float(v))] for name, v in values.items())
        self.file.flush()

    def image(self, step: int, name: str, path: Path) -> None:
        pass  # a CSV holds numbers; the grids stay in samples/

    def close(self) -> None:
        self.file.close()


class TensorBoardLogger:
    """Scalars, sample grids and the run's configuration as TensorBoard events under
    ``RUN/tensorboard`` (`tensorboard --logdir runs`)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], start_step: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UsageError(
                "--log tensorboard needs the tensorboard package: pip install tensorboard"
            ) from None
        # purge_step drops events a resumed run will write again
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        self.writer.add_text("config", f"```\n{text}\n```", start_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def image(self, step: int, name: str, path: Path) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        self.writer.add_image(name, pixels, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class GuardedLogger:
    """A logger whose faults name its plugin once and disable it (or, strict, stop the run)."""

    def __init__(self, logger: Logger, who: str, strict: bool):
        self.logger, self.who, self.strict = logger, who, strict
        self.failed = False

    def _call(self, method: str, *args: Any) -> None:
        from zoo.registry.discovery import PLUGIN_FAULTS, PluginError

        if self.failed:
            return
        try:
            getattr(self.logger, method)(*args)
        except PLUGIN_FAULTS as exc:
            self.failed = True
            fault = f"{self.who} failed in {method}(): {type(exc).__name__}: {exc}"
            if self.strict:
                raise PluginError(f"{fault} (ZOO_STRICT_PLUGINS is set)") from exc
            print(f"zoo: {fault}; it is disabled and training goes on", file=sys.stderr)

    def log(self, step: int, values: dict[str, float]) -> None:
        self._call("log", step, values)

    def image(self, step: int, name: str, path: Path) -> None:
        self._call("image", step, name, path)

    def close(self) -> None:
        self._call("close")


def open_loggers(
    names: list[str], run_dir: Path, config: dict[str, Any], start_step: int
) -> list[Logger]:
    """The loggers named by `--log`, from the registry, each guarded; unknown names are usage
    errors, a constructor that fails a plugin error naming its plugin."""
    from zoo.registry.discovery import PLUGIN_FAULTS, PluginError, get_registry

    registry = get_registry()
    loggers: list[Logger] = []
    for name in names:
        factory = registry.logger(name)
        record = registry.plugin_of("logger", name)
        who = f"logger {name!r} of {record.origin() if record else 'an unknown plugin'}"
        try:
            loggers.append(
                GuardedLogger(factory(run_dir, config, start_step), who, registry.strict)
            )
        except UsageError:
            raise
        except PLUGIN_FAULTS as exc:
            for opened in loggers:
                opened.close()
            raise PluginError(
                f"{who} failed to start: {type(exc).__name__}: {exc}; drop --log {name}"
            ) from exc
    return loggers
