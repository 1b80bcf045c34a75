"""torch's CPU random draws reproduced in NumPy, so that sampling an ONNX file without torch
(zoo/runtime/onnx_sampling.py) draws the latent vectors and labels that `zoo sample --seed S` draws
with torch, and both runtimes give the same images for the same seed.

``torch.Generator().manual_seed(s)`` is a 32-bit Mersenne Twister seeded with ``s mod 2**32``
(NumPy's legacy MT19937 seeding is the same). From it, ``torch.randn`` of 16 or more values
takes one 24-bit uniform per value and turns them into normals 16 at a time by Box-Muller
(ATen/native/cpu/DistributionTemplates.h, ``normal_fill``), and ``torch.randint(high, ...)``
takes one 32-bit draw per value modulo ``high``. tests/test_onnx_sampling.py checks both
against the torch zoo is pinned to; results agree to float32 rounding (the vectorised
log/sin/cos differ in the last bits), not bit for bit.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

MIN_NORMALS = 16  # below this torch takes another path (doubles, cached pairs): not mirrored


class Draws(Protocol):
    """A seeded source of torch's draws, as NumPy arrays: `TorchGenerator` here, or torch's
    generator itself (`zoo.contract.model.TorchDraws`). Latent tools and multi-step samplers
    take either, so both runtimes draw the same numbers."""

    def randn(self, *shape: int) -> np.ndarray: ...

    def randint(self, high: int, n: int) -> np.ndarray: ...


class TorchGenerator:
    """The draws of ``torch.Generator().manual_seed(seed)``, in order."""

    def __init__(self, seed: int):
        self._bits = np.random.MT19937()
        self._bits._legacy_seeding(seed % 2**32)

    def _raw(self, n: int) -> np.ndarray:
        return self._bits.random_raw(n).astype(np.uint32)

    def _uniform(self, n: int) -> np.ndarray:
        return (self._raw(n) & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)

    def randn(self, *shape: int) -> np.ndarray:
        """``torch.randn(*shape, generator=g)`` as float32."""
        size = math.prod(shape)
        if size < MIN_NORMALS:
            raise ValueError(f"randn of {size} values: torch draws fewer than 16 otherwise")
        u = self._uniform(size)
        out = np.empty(size, np.float32)
        whole = size - size % 16
        out[:whole] = _box_muller(u[:whole])
        if size % 16:  # torch redraws 16 uniforms for the last 16 values
            out[size - 16 :] = _box_muller(self._uniform(16))
        return out.reshape(shape)

    def randint(self, high: int, n: int) -> np.ndarray:
        """``torch.randint(high, (n,), generator=g)`` as int64 (``high`` below 2**32)."""
        return (self._raw(n) % np.uint32(high)).astype(np.int64)


def _box_muller(u: np.ndarray) -> np.ndarray:
    """ATen's normal_fill_16 on each block of 16 uniforms: the first 8 give the radii, the
    last 8 the angles; cosines fill the first half of the block, sines the second."""
    blocks = u.reshape(-1, 2, 8)
    radius = np.sqrt(np.float32(-2.0) * np.log(np.float32(1.0) - blocks[:, 0]))
    theta = np.float32(2.0 * math.pi) * blocks[:, 1]
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1).reshape(-1)
