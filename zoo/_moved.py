"""Old import paths of the plugin API, kept working for one release after the role layout.

zoo 0.1 kept its core in one folder (``zoo.model``, ``zoo.blocks`` ...); the names plugins
import now live in role subpackages (docs/architecture.md). Importing an old path still
gives the same module object, with a DeprecationWarning that names the new path; these
aliases go in zoo 0.3. Only the paths docs/plugins.md once listed are kept: any other module
was zoo's own.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

REMOVED_IN = "0.3"
MOVED = {
    "zoo.model": "zoo.contract.model",
    "zoo.latent": "zoo.contract.latent",
    "zoo.blocks": "zoo.contract.blocks",
    "zoo.augment": "zoo.contract.augment",
    "zoo.metadata": "zoo.contract.metadata",
    "zoo.catalogue": "zoo.registry.catalogue",
    "zoo.checkpoint": "zoo.store.checkpoint",
    "zoo.onnx_files": "zoo.store.exports",
    "zoo.files": "zoo.base.files",
}


def moved_warning(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; import it from there (the old path goes in zoo {REMOVED_IN})",
        DeprecationWarning,
        stacklevel=3,
    )


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the module now at the new one (the same object, so
    classes and isinstance checks agree whichever path imported them)."""

    def find_spec(
        self, fullname: str, path: object, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        moved_warning(spec.name, new)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Already executed under its new name."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
