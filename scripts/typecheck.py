"""Type-check zoo as it is installed: `python scripts/typecheck.py` (run by `make test`).

The repository maps packages to folders (`zoo.plugins` is plugins/, `zoo.exporters` is
exporters/: [tool.setuptools.package-dir] in pyproject.toml), which mypy cannot follow, so the
installed layout is rebuilt from symlinks in a temporary folder and mypy runs there with the
settings in [tool.mypy]. Paths in its report are mapped back to the repository's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    with tempfile.TemporaryDirectory(prefix="zoo-typecheck-") as tmp:
        stage = Path(tmp)
        # longest names last, so zoo/ exists before zoo/plugins is linked inside it
        for package, folder in sorted(package_dirs.items(), key=lambda kv: kv[0].count(".")):
            target = stage.joinpath(*package.split("."))
            if package.count(".") == 0:
                target.mkdir()
                for item in (ROOT / folder).iterdir():
                    if item.name != "__pycache__":
                        (target / item.name).symlink_to(item)
            else:
                target.symlink_to(ROOT / folder, target_is_directory=True)
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "zoo", "--config-file", str(ROOT / "pyproject.toml"),
             "--cache-dir", str(ROOT / ".mypy_cache")],
            cwd=stage, capture_output=True, text=True,
        )  # fmt: skip
    renames = {f"{p.replace('.', os.sep)}{os.sep}": f"{d}{os.sep}" for p, d in package_dirs.items()}
    for line in (result.stdout + result.stderr).splitlines():
        for staged, real in sorted(renames.items(), key=lambda kv: -len(kv[0])):
            if line.startswith(staged):
                line = real + line[len(staged) :]
                break
        print(line)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
