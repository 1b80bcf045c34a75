"""The training loop every family shares: batches, precision, logging, previews, checkpoints.

Families only implement `train_step`; this module owns everything around it, so resume,
Ctrl-C, NaN handling and sample grids behave the same for every family.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.base.files import (
    LockTimeout,
    atomic_path,
    file_lock,
    lock_holder,
    remove_stale,
    write_text,
)
from zoo.base.runs import latest_checkpoint
from zoo.base.settings import TrainSettings
from zoo.contract.imagesets import Dataset
from zoo.contract.model import Batch, GenerativeModel, ModelInfo, Noise
from zoo.data.batches import Batches
from zoo.data.images import save_samples
from zoo.errors import UsageError, ZooError
from zoo.runtime.devices import tune_for_training
from zoo.store.checkpoint import load_train_state, load_weights, non_finite, save_checkpoint
from zoo.training import distributed
from zoo.training.distributed import ONE, World
from zoo.training.loggers import Logger, open_loggers
from zoo.training.precision import autocast, choose_precision


class Interrupted(ZooError):
    exit_code = 130


class Terminated(ZooError):
    exit_code = 143


class StopOnSignal:
    """Ctrl-C (SIGINT) or SIGTERM (a scheduler's stop) asks the loop to stop after the current
    step, so the checkpoint it saves is a consistent state that resumes exactly; a second
    signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signum
        self._restore()
        print("\nzoo: stopping after this step (again to abort)", file=sys.stderr)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    seconds: float
    last: dict[str, float]


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def write_failure(exc: BaseException) -> str:
    """Why a write failed, in words: safetensors and torch wrap the OS error in their own."""
    text = str(exc)
    codes = {28: "no space left on device", 27: "file too large for the file-size limit"}
    if isinstance(exc, OSError) and exc.errno in codes:
        return codes[exc.errno]
    for code, words in codes.items():
        if f"os error {code}" in text or f"code: {code}" in text:
            return words
    if "inline_container" in text or "file write failed" in text:
        return "the disk refused the write (full, or a file-size limit)"
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


def last_good(run_dir: Path) -> str:
    """What a failed run leaves to resume from, for its error message."""
    last = latest_checkpoint(run_dir)
    return (
        f"the last good checkpoint ({last.name}) is intact" if last else "no checkpoint was written"
    )


def _check_finite(means: dict[str, float], step: int, run_dir: Path) -> None:
    bad = {k: v for k, v in means.items() if not math.isfinite(v)}
    if bad:
        kept = last_good(run_dir)
        name, value = next(iter(bad.items()))
        raise ZooError(
            f"loss {name!r} became {value} by step {step}; training stopped and {kept}; "
            "start a new run (--out DIR) with a lower learning rate (--set lr=...) or another "
            "--seed"
        )


def _plot_losses(metrics_file: Path, out: Path) -> None:
    """loss.png from metrics.jsonl, when matplotlib is installed (zoo-gen[plot])."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = read_metrics(metrics_file)
    keys = sorted({k for r in rows for k in r} - {"step", "seconds", "images_per_s"})
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in keys:
        ax.plot([r["step"] for r in rows if k in r], [r[k] for r in rows if k in r], label=k)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl, skipping a torn line (what kill -9 or a full disk leaves)."""
    rows = []
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def cut_log(path: Path, step: int) -> float:
    """On resume: keep the rows up to the checkpoint's step (the later ones are trained again)
    and return the clock they reached, so ``seconds`` stays cumulative."""
    rows = [r for r in read_metrics(path) if r["step"] <= step]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return max((float(r.get("seconds", 0.0)) for r in rows), default=0.0)


class MetricsLog:
    """Running means of the losses, flushed as JSON lines (metrics.jsonl) every log step.

    Losses stay tensors between flushes: converting each step would sync the GPU each step.
    A non-finite loss is caught at the next flush, before any checkpoint is written.
    """

    def __init__(
        self, path: Path, clock: float = 0.0, world: World = ONE, loggers: Sequence[Logger] = ()
    ):
        self.path, self.world, self.loggers = path, world, list(loggers)
        self.sums: dict[str, torch.Tensor] = {}
        self.count = self.images = 0
        self.window = time.perf_counter()
        self.start = self.window - clock  # a resumed run's clock goes on
        self.last: dict[str, float] = {}

    def add(self, losses: dict[str, Any], images: int) -> None:
        for name, value in losses.items():
            value = value.detach().float() if torch.is_tensor(value) else torch.tensor(value)
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1
        self.images += images

    def flush(self, step: int) -> dict[str, float]:
        now = time.perf_counter()
        local = {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}
        self.last = distributed.mean(local, self.world)
        speed = round(self.world.size * self.images / max(now - self.window, 1e-9), 1)
        self.write(
            step, {"seconds": round(now - self.start, 3), "images_per_s": speed, **self.last}
        )
        self.sums, self.count, self.images, self.window = {}, 0, 0, now
        return self.last

    def write(self, step: int, values: dict[str, float]) -> None:
        if values and self.world.main:
            row = {"step": step, **{k: round(v, 6) for k, v in values.items()}}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            for logger in self.loggers:
                logger.log(step, values)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


class ProgressLines:
    """Progress for logs: step, speed, losses and ETA each time another 5% is done."""

    def __init__(self, total: int, start: int):
        self.total, self.start = total, start
        self.began = time.perf_counter()
        self.next = start * 20 // max(total, 1) + 1

    def report(self, step: int, means: dict[str, float]) -> None:
        if step * 20 < self.next * self.total and step != self.total:
            return
        self.next = step * 20 // self.total + 1
        elapsed = time.perf_counter() - self.began
        rate = (step - self.start) / max(elapsed, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else 0.0
        losses = " ".join(f"{k} {v:.3g}" for k, v in means.items())
        print(
            f"zoo: step {step}/{self.total} ({100 * step // self.total}%), {rate:.1f} steps/s, "
            f"ETA {eta / 60:.1f} min, {losses}",
            file=sys.stderr,
            flush=True,
        )


class Trainer:
    """Trains one model into one run directory."""

    def __init__(
        self,
        model: GenerativeModel,
        info: ModelInfo,
        data: Dataset,
        settings: TrainSettings,
        run_dir: Path,
        device: torch.device,
        seed: int,
        precision: str = "auto",
        progress: bool = True,
        world: World = ONE,
        log_to: Sequence[str] = (),
        compile: bool = False,
    ):
        self.model, self.info, self.data = model, info, data
        self.settings, self.run_dir, self.device = settings, run_dir, device
        self.seed, self.world, self.log_to = seed, world, list(log_to)
        self.progress = progress and world.main
        if model.conditional and data.train.labels is None:
            raise UsageError(f"{info.family} is conditional but {info.data} has no labels")
        if model.domains == 2 and data.train_b is None:
            raise UsageError(
                f"{info.family} translates between two domains: use --data unpaired:A,B or "
                "a folder with trainA/ and trainB/"
            )
        shard = (world.rank, world.size)
        self.batches = Batches(data.train, settings.batch_size, device, seed, shard)
        self.batches_b = (
            Batches(data.train_b, settings.batch_size, device, seed + 1, shard)
            if model.domains == 2 and data.train_b is not None
            else None
        )
        tune_for_training(device)
        self.memory_format = pick_memory_format(settings.memory_format, device)
        model.to(device)
        model.to(memory_format=self.memory_format)  # 4-d weights only; the rest is unchanged
        model.optimizers = model.configure_optimizers()
        for opt in model.optimizers.values():
            distributed.average_gradients(opt, world)
        self.step = 0
        # ranks could measure differently, so only a single process lets auto measure
        allowed = settings.auto_bf16 and world.size == 1
        self.precision, timed = choose_precision(precision, device, allowed, self._time_precisions)
        info.train["precision"] = self.precision
        if timed is not None:
            info.train["precision_images_per_s"] = timed
        self.compiled = compile
        if compile:
            compile_networks(model)
        self.clock = 0.0  # seconds trained before this process (resumed runs)

    def total_steps(self) -> int:
        s = self.settings
        if s.epochs > 0:
            return math.ceil(s.epochs * len(self.data.train) / self.batches.global_size)
        return s.steps

    def resume(self, checkpoint: Path) -> None:
        weights = load_weights(checkpoint / "model.safetensors")
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as exc:
            raise ZooError(f"{checkpoint} does not match the model ({exc})") from None
        state = load_train_state(checkpoint)
        for name, opt in self.model.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.batches.load_state_dict(state["batches"])
        if self.batches_b is not None:
            self.batches_b.load_state_dict(state["batches_b"])
        _set_rng_state(state["rng"], self.device)
        self.step = int(state["step"])
        self.model.on_load(self.step)
        if self.world.main:
            self.clock = cut_log(self.run_dir / "metrics.jsonl", self.step)

    def save(self) -> Path | None:
        """A checkpoint of the current step, written by rank 0 once the ranks' BatchNorm
        statistics are averaged; non-finite weights are never written."""
        distributed.average_buffers(self.model, self.world)
        if not self.world.main:
            return None
        bad = non_finite(self.model.state_dict())
        if bad:
            kept = last_good(self.run_dir)
            raise ZooError(
                f"weight {bad!r} is not finite at step {self.step}; training stopped and {kept}; "
                "start a new run with a lower learning rate (--set lr=...) or another --seed"
            )
        self.info.step = self.step
        state = {
            "step": self.step,
            "optimizers": {k: o.state_dict() for k, o in self.model.optimizers.items()},
            "batches": self.batches.state_dict(),
            "rng": _rng_state(self.device),
        }
        if self.batches_b is not None:
            state["batches_b"] = self.batches_b.state_dict()
        try:
            return save_checkpoint(
                self.run_dir, self.model, self.info, state, self.settings.keep_checkpoints
            )
        except Exception as exc:  # OSError, SafetensorError, torch's inline_container errors
            kept = last_good(self.run_dir)
            raise ZooError(
                f"cannot write the checkpoint of step {self.step} in {self.run_dir / 'checkpoints'}"
                f" ({write_failure(exc)}); {kept}; free space, then continue with --resume"
            ) from exc

    def preview(self, loggers: Sequence[Logger] = ()) -> None:
        """A sample grid from fixed noise, so grids across steps are comparable."""
        held_out = self.data.test_b if self.model.domains == 2 else None
        images, nrow = self.model.preview(self.data.test, held_out, self.seed)
        self.model.train()
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        save_samples(path, images, nrow)
        for logger in loggers:
            logger.image(self.step, "samples", path)

    def _validate(self) -> dict[str, float]:
        with torch.no_grad():
            values = self.model.validate(self.data.test)
        self.model.train()
        return {f"val_{k}": float(v) for k, v in values.items()}

    def _batch(self, k: int) -> Batch:
        noise = Noise(self.seed, self.step, (self.world.rank, self.world.size), self.device)
        draws = [self.batches.next() for _ in range(k)]
        images = torch.cat([d[0] for d in draws])
        labels = (
            torch.cat([d[1] for d in draws if d[1] is not None])
            if draws[0][1] is not None
            else None
        )
        images_b = (
            torch.cat([self.batches_b.next()[0] for _ in range(k)])
            if self.batches_b is not None
            else None
        )
        if self.memory_format is torch.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
            if images_b is not None:
                images_b = images_b.contiguous(memory_format=torch.channels_last)
        return Batch(images, labels, images_b, noise)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The precision train steps run in (``--precision``): bf16 autocast on the device."""
        return autocast(self.precision, self.device)

    def _time_precisions(self, steps: int = 4, rounds: int = 2) -> dict[str, float]:
        """Train images/s in fp32 and in bf16 on a copy of the model, the best of ``rounds``
        interleaved rounds of a warm-up step and ``steps`` timed ones; the run's model,
        batches and random streams are left as they were, so the run trains as if unmeasured."""
        model = copy.deepcopy(self.model)
        model.total_steps = self.total_steps()
        model.train()
        draws = [b for b in (self.batches, self.batches_b) if b is not None]
        states = [b.state_dict() for b in draws]
        k = model.batches_per_step(self.step)
        rates: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            for _ in range(rounds):
                for precision in ("fp32", "bf16"):
                    try:
                        with autocast(precision, self.device):
                            model.train_step(self._batch(k), self.step)
                            start = time.perf_counter()
                            for _ in range(steps):
                                model.train_step(self._batch(k), self.step)
                    except RuntimeError:  # an op without a bf16 kernel: float32 it is
                        if precision == "fp32":
                            raise
                        rates[precision] = 0.0
                        continue
                    rate = steps * k * self.batches.batch_size / (time.perf_counter() - start)
                    rates[precision] = max(rates.get(precision, 0.0), rate)
        for batches, state in zip(draws, states):
            batches.load_state_dict(state)
        return rates

    @contextlib.contextmanager
    def _compile_errors(self) -> Iterator[None]:
        """torch.compile's one known refusal, said as a usage error."""
        try:
            yield
        except RuntimeError as exc:
            if not (self.compiled and "double backward" in str(exc)):
                raise
            raise UsageError(
                f"--compile: {self.info.family}'s loss differentiates through a gradient (a "
                "gradient penalty), which torch.compile cannot do; train without --compile"
            ) from None

    def fit(self) -> TrainResult:
        total, main = self.total_steps(), self.world.main
        loggers: list[Logger] = []
        if main:
            config = json.loads(self.info.to_json())
            write_text(self.run_dir / "config.json", json.dumps(config, indent=2))
            loggers = open_loggers(self.log_to, self.run_dir, config, self.step)
        try:
            return self._fit(
                total, MetricsLog(self.run_dir / "metrics.jsonl", self.clock, self.world, loggers)
            )
        finally:
            for logger in loggers:
                logger.close()

    def _fit(self, total: int, log: MetricsLog) -> TrainResult:
        s, main = self.settings, self.world.main
        from tqdm import tqdm

        bar = tqdm(
            total=total,
            initial=self.step,
            disable=not self.progress or None,
            desc=self.info.name or self.info.family,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        # without a terminal tqdm stays silent: a job's log gets a line every 5% instead
        lines = ProgressLines(total, self.step) if self.progress and bar.disable else None
        self.model.total_steps = total
        self.model.train()
        distributed.broadcast_state(self.model, self.world)
        if self.world.size > 1:  # each rank's own stream for what Noise does not draw
            torch.manual_seed(zlib.crc32(f"{self.seed}:{self.world.rank}:{self.step}".encode()))
        with StopOnSignal() as stop, bar:
            while self.step < total:
                k = self.model.batches_per_step(self.step)
                batch = self._batch(k)
                with self.autocast(), self._compile_errors():
                    losses = self.model.train_step(batch, self.step)
                log.add(losses, k * self.batches.batch_size)
                self.step += 1
                bar.update(1)
                done = self.step == total
                if self.step % s.log_every == 0 or done:
                    means = log.flush(self.step)
                    _check_finite(means, self.step, self.run_dir)
                    bar.set_postfix({n: f"{v:.3g}" for n, v in means.items()}, refresh=False)
                    if lines is not None:
                        lines.report(self.step, means)
                if main and (self.step % s.sample_every == 0 or done):
                    self.preview(log.loggers)
                if self.step % s.checkpoint_every == 0 or done:
                    if main:
                        log.write(self.step, self._validate())
                    self.save()
                if distributed.any_rank(stop.requested is not None, self.world) and not done:
                    path = self.save() or "rank 0's run directory"
                    error = Interrupted if stop.requested == signal.SIGINT else Terminated
                    raise error(
                        f"{'terminated' if error is Terminated else 'interrupted'} at step "
                        f"{self.step}; checkpoint saved to {path}; continue with --resume"
                    )
        if main:
            _plot_losses(log.path, self.run_dir / "loss.png")
        return TrainResult(self.run_dir, self.step, log.elapsed(), log.last)


def pick_memory_format(setting: str, device: torch.device) -> torch.memory_format:
    """channels_last stores images and convolution weights pixel by pixel (NHWC), the layout
    cuDNN's tensor-core kernels and oneDNN's fastest CPU kernels want; ``auto`` takes it on
    CUDA only, so CPU runs keep the numerics the published recipes were trained with."""
    if setting == "channels_last" or (setting == "auto" and device.type == "cuda"):
        return torch.channels_last
    return torch.contiguous_format


def compile_networks(model: torch.nn.Module) -> None:
    """Compile each trainable network of ``model`` in place with torch.compile (parameter
    names, so checkpoints, stay as they are); the first steps pay for the compilation."""
    for child in model.children():
        if any(p.requires_grad for p in child.parameters()):
            child.compile()


RUN_MARK = ".zoo-run"  # in every run directory zoo made: the folders it may write into


def clean_stale(run_dir: Path) -> None:
    """Remove half-written checkpoint folders and files that a killed run of this host left
    (atomic writes name them .NAME.HOST-PID.XXXX.tmp, and only those whose process is dead
    go); the run holds its lock, so none is being written."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
        remove_stale(folder)


def _made_by_zoo(run_dir: Path) -> bool:
    """A run directory: zoo's mark, or a checkpoint that an older zoo (before the mark) wrote."""
    return (run_dir / RUN_MARK).is_file() or latest_checkpoint(run_dir) is not None


def claim_run_dir(run_dir: Path) -> None:
    """Make ``run_dir`` (or adopt it when empty) and mark it as zoo's; a folder that holds
    anything zoo did not make is never written into."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / RUN_MARK).is_file():
        check_not_foreign(run_dir)
        write_text(run_dir / RUN_MARK, "a zoo training run: zoo train may write here\n")


def check_not_foreign(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder; choose a new folder")
    if run_dir.is_dir() and not _made_by_zoo(run_dir) and any(run_dir.iterdir()):
        raise UsageError(
            f"--out {run_dir} is a folder zoo did not make and it is not empty; train into a "
            "new or empty folder (zoo writes config.json, checkpoints/ and samples/ there)"
        )


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for one training process: a second one gets an error naming the
    first, instead of both writing into the same run."""
    lock = run_dir / ".lock"
    try:
        with file_lock(lock, timeout=0):
            yield
    except LockTimeout:
        raise ZooError(
            f"{run_dir} is being trained by another process (pid {lock_holder(lock)}); wait "
            "for it to finish or train into another --out"
        ) from None


def check_run_dir(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from; refuses to overwrite a run unless resuming, and any
    non-empty folder zoo did not make. Touches nothing on disk."""
    check_not_foreign(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if resume and checkpoint is None:
        raise UsageError(f"--resume but {run_dir} has no checkpoint; drop --resume to start anew")
    if not resume and checkpoint is not None:
        raise UsageError(
            f"{run_dir} already holds a run; pass --resume to continue it or --out DIR for a "
            "new one"
        )
    return checkpoint
