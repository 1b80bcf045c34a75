"""Data-parallel training on torch.distributed: `torchrun --nproc-per-node N -m zoo train NAME`.

How a run splits over N processes (ranks), so that it trains what one process with the whole
batch would (within float rounding) and resumes with any number of processes:

- Data: every rank draws the same global batch (one shared, seeded order) and keeps its own
  shard, ``batch_size / N`` images; the sampler's state is the same on every rank, so a
  checkpoint resumes the same data order whatever N is.
- Noise: `zoo.contract.model.Noise` draws the step's random numbers for the global batch from a
  generator seeded by (seed, step) and hands each rank its rows, so the noise for image i of the
  global batch does not depend on N. Other randomness (dropout, augmentation, a gradient
  penalty's mixing weights) comes from each rank's own stream, seeded by seed and rank.
- Gradients: each optimiser averages the gradients of the parameters it updates across
  ranks just before it steps (a step pre-hook). This is what DistributedDataParallel does
  for one forward and one backward per step; a GAN step runs D several times per backward
  and sends G's loss through D, which DDP's reducer only handles with unused-parameter
  search and extra copies, while averaging exactly what each optimiser applies needs
  neither and works for any number of optimisers (GANs, CycleGAN) and for growing
  networks (PGGAN: the schedule is a function of the step, the same on every rank).
- BatchNorm normalises each rank's shard by its own statistics (DDP without SyncBatchNorm,
  which needs a GPU); the running averages are averaged across ranks before a checkpoint.
- Only rank 0 writes: checkpoints, sample grids, metrics (losses averaged over ranks).
- A stop (Ctrl-C, SIGTERM) is agreed on by all ranks each step, so they stop together.

Backends: NCCL on CUDA (each rank on the GPU of its LOCAL_RANK), gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from zoo.errors import UsageError


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank ``rank`` of ``size``."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> World:
        """From torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without."""
        try:
            size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise UsageError("WORLD_SIZE, RANK and LOCAL_RANK must be integers") from None
        if size < 1 or not 0 <= rank < size:
            raise UsageError(f"bad RANK {rank} for WORLD_SIZE {size}")
        return cls(rank, size, local)


ONE = World()  # a run in one process


def init(world: World, device: torch.device) -> None:
    """Join the process group: NCCL on CUDA, gloo on the CPU."""
    if world.size == 1 or dist.is_initialized():
        return
    if "MASTER_ADDR" not in os.environ:
        raise UsageError(
            "WORLD_SIZE > 1 without MASTER_ADDR: launch with torchrun (or zoo train --nproc N)"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    store = _rendezvous(world)
    dist.init_process_group(backend, store=store, rank=world.rank, world_size=world.size)
    global joined
    joined = True


joined = False  # this process joined a process group (zoo.cli.main.main then ends it with os._exit)


def _rendezvous(world: World) -> Any:
    """The ranks' meeting point, waited for at most ZOO_RENDEZVOUS_TIMEOUT seconds (300) and
    said on stderr while waiting: RANK/WORLD_SIZE left in the environment by an earlier job
    would otherwise make a plain `zoo train` wait silently for torch's 30 minutes."""
    import sys
    import threading
    from datetime import timedelta

    from zoo.errors import ZooError

    text = os.environ.get("ZOO_RENDEZVOUS_TIMEOUT", "300")
    try:
        limit = float(text)
    except ValueError:
        limit = float("nan")
    if not 0 < limit < float("inf"):
        raise UsageError(f"ZOO_RENDEZVOUS_TIMEOUT={text!r}: use a positive number of seconds")
    host, port = os.environ["MASTER_ADDR"], int(os.environ.get("MASTER_PORT", "29500"))
    where = f"{host}:{port}"
    note = threading.Timer(
        min(5.0, limit / 2),
        lambda: print(
            f"zoo: rank {world.rank} of {world.size} is waiting for the others at {where} "
            "(RANK and WORLD_SIZE are set; unset them to train in one process)",
            file=sys.stderr,
            flush=True,
        ),
    )
    note.daemon = True
    note.start()
    # under torchrun or launch_local the launcher hosts the store, which outlives every rank
    hosted = (
        os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" or "ZOO_STORE_HOSTED" in os.environ
    )
    try:
        return dist.TCPStore(
            host, port, world.size, world.rank == 0 and not hosted, timedelta(seconds=limit),
            wait_for_workers=True,
        )  # fmt: skip
    except (RuntimeError, OSError) as exc:
        raise ZooError(
            f"rank {world.rank} of {world.size} could not meet the other processes at {where} "
            f"within {limit:g} s ({str(exc).splitlines()[0][:120]}); start every rank, or unset "
            "RANK/WORLD_SIZE/MASTER_ADDR to train in one process"
        ) from None
    finally:
        note.cancel()


def leave(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def shard_size(batch_size: int, world: World, resumed: bool = False) -> int:
    """Images per rank in each batch; a batch must split evenly. A resumed run keeps its
    batch size, so then the advice is about the number of processes."""
    if batch_size % world.size:
        counts = [n for n in range(1, min(batch_size, 64) + 1) if batch_size % n == 0]
        fix = (
            f"resume it with a process count that divides it ({', '.join(map(str, counts[:8]))})"
            if resumed
            else f"use a multiple of {world.size}"
        )
        raise UsageError(
            f"batch_size {batch_size} does not split over {world.size} processes; {fix}"
        )
    return batch_size // world.size


def launch_local(nproc: int, args: list[str]) -> int:
    """Run ``python -m zoo ARGS`` as ``nproc`` ranks on this machine (what torchrun
    --standalone does, without its tracebacks) and return their exit code.

    The ranks run in a process group of their own, so Ctrl-C at a terminal reaches this
    process alone, which passes it (and SIGTERM) to every rank once: each finishes its step,
    rank 0 saves the checkpoint, and the code is 130 or 143 as for one process. A rank that
    fails stops the others."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    from datetime import timedelta

    with socket.socket() as probe:  # a free loopback port for the ranks' rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # hosted here, as torchrun's agent hosts it: the ranks may then exit in any order
    store = dist.TCPStore(
        "127.0.0.1", port, nproc, True, timedelta(minutes=30), wait_for_workers=False
    )
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(nproc),
        "LOCAL_WORLD_SIZE": str(nproc),
        "ZOO_STORE_HOSTED": "1",
    }
    ranks = [
        subprocess.Popen(
            [sys.executable, "-m", "zoo", *args],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            process_group=0,
        )
        for r in range(nproc)
    ]

    def forward(signum: int, frame: object) -> None:
        for rank in ranks:
            if rank.poll() is None:
                rank.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while any(rank.poll() is None for rank in ranks):
            if any(rank.returncode not in (None, 0) for rank in ranks):
                for rank in ranks:  # one rank failed: the others would wait for it forever
                    if rank.poll() is None:
                        rank.terminate()
            time.sleep(0.1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    del store
    codes = [rank.returncode for rank in ranks]
    stopped = [c for c in codes if c in (130, 143)]
    return stopped[0] if stopped else next((c for c in codes if c), 0)


def average_gradients(optimizer: torch.optim.Optimizer, world: World) -> None:
    """Make every rank's optimiser apply the mean gradient, just before each ``step``."""

    def hook(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        grads = [p.grad for group in opt.param_groups for p in group["params"]]
        grads = [g for g in grads if g is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    if world.size > 1:
        optimizer.register_step_pre_hook(hook)


def broadcast_state(module: torch.nn.Module, world: World) -> None:
    """Every rank starts from rank 0's weights and buffers."""
    if world.size > 1:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def average_buffers(module: torch.nn.Module, world: World) -> None:
    """Average floating buffers (BatchNorm's running statistics) across ranks."""
    if world.size > 1:
        for t in module.buffers():
            if t.is_floating_point():
                dist.all_reduce(t)
                t /= world.size


def _device() -> torch.device:
    """Where collectives run: NCCL needs CUDA tensors, gloo takes CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean(values: dict[str, float], world: World) -> dict[str, float]:
    """The mean of each value across ranks (logged losses)."""
    if world.size == 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return {k: float(v) / world.size for k, v in zip(values, t.tolist())}


def any_rank(flag: bool, world: World) -> bool:
    """Whether ``flag`` is set on any rank."""
    if world.size == 1:
        return flag
    t = torch.tensor([int(flag)], device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
