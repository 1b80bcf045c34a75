"""Print zoo's requirements from pyproject.toml, one per line, for `pip install -r`.

    python scripts/requirements.py [--cpu] [--extra dev ...]

``--cpu`` swaps onnxruntime-gpu for onnxruntime (the two overwrite each other, so install only
one); with torch's CPU index (`make ... CPU_ONLY=1` passes it) the install has no CUDA
libraries. The default keeps onnxruntime-gpu, which also runs on the CPU.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
GPU_ONLY = {"onnxruntime-gpu": "onnxruntime"}


def requirements(cpu: bool, extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    out = []
    for requirement in found:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        if cpu and name in GPU_ONLY:
            requirement = GPU_ONLY[name] + requirement[len(name) :]
        out.append(requirement)
    return list(dict.fromkeys(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="onnxruntime, not onnxruntime-gpu")
    parser.add_argument("--extra", action="append", default=[], help="also an extra's packages")
    args = parser.parse_args()
    print("\n".join(requirements(args.cpu, args.extra)))


if __name__ == "__main__":
    main()
