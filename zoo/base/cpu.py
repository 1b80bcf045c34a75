"""What this CPU computes fast: the instruction-set features that decide which precisions
have hardware kernels (torch-free, so deciding costs nothing at start-up)."""

from __future__ import annotations

from pathlib import Path

# /proc/cpuinfo flags that decide which precisions have fast kernels
FEATURES = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The features in FEATURES that this CPU has, by their display names (Linux; elsewhere
    none are known)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return [name for flag, name in FEATURES.items() if flag in flags]


def native_bf16(features: list[str]) -> bool:
    """Whether the CPU computes bf16 products in hardware (AMX or AVX-512 BF16), rather than
    converting to float32 and back, which is slower than float32 alone."""
    return "AMX-BF16" in features or "AVX-512 BF16" in features
