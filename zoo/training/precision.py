"""Which precision a run trains in, and how train steps run in it.

``--precision fp32`` or ``bf16`` is taken as said (bf16 is autocast, on a CPU or a GPU).
``auto`` is bf16 on CUDA, whose tensor cores make it the fast path. On a CPU it is float32
unless three things hold: the recipe says its quality holds in bf16 (the ``auto_bf16``
setting, which a recipe sets only after a bf16 run scored within the spread of float32 runs),
the CPU computes bf16 in hardware (AMX or AVX-512 BF16; elsewhere bf16 is emulated and slower),
and a few train steps timed at the start show bf16 at least BF16_GAIN times as fast for this
model. The choice and the timings go into the run's record.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import torch

from zoo.base.cpu import cpu_features, native_bf16
from zoo.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16")
# bf16 rounds every product: a measured gain below this is not worth a change of numerics
BF16_GAIN = 1.1


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"bad precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """What runs inside computes in ``precision``: bf16 autocast on the device, or as is."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def choose_precision(
    precision: str,
    device: torch.device,
    recipe_allows: bool,
    measure: Callable[[], dict[str, float]],
) -> tuple[str, dict[str, float] | None]:
    """(the precision to train in, the train images/s per precision that decided it, if
    measured). ``measure`` times a few train steps in each precision without changing the
    run; it is called only when ``auto`` leaves the choice to a measurement."""
    if check_precision(precision) != "auto":
        return precision, None
    if device.type == "cuda":
        return "bf16", None
    if not recipe_allows or not native_bf16(cpu_features()):
        return "fp32", None
    rates = measure()  # bf16 0: the model's step failed under bf16 autocast
    gain = rates["bf16"] / rates["fp32"]
    chosen = "bf16" if gain >= BF16_GAIN else "fp32"
    why = (
        f"bf16 trained {gain:.2f}x float32's images/s in a short measurement on this CPU; "
        f"bf16 needs {BF16_GAIN}x"
        if gain
        else "the model's step fails under bf16 autocast"
    )
    print(
        f"zoo: --precision auto: {'bf16 autocast' if chosen == 'bf16' else 'float32'} ({why})",
        file=sys.stderr,
    )
    return chosen, {k: round(v, 1) for k, v in rates.items()}
