"""zoo: a plugin-based zoo of generative image models.

This module holds the names a plugin needs to register itself, and stays light (no torch
import) so that `zoo --help` and `zoo list` start fast. The Python API is `zoo.api`; the
core is grouped by role into subpackages, from the bottom up: `base`, `contract`,
`registry`, `store`, `data`, `runtime`, `training`, `evaluation`, `serving`, `cli`
(docs/architecture.md).
"""

from zoo import _moved
from zoo.base.settings import Config, setting
from zoo.contract.hookspecs import hookimpl, plugin
from zoo.contract.specs import (
    CatalogueEntry,
    DataSourceSpec,
    ExporterSpec,
    FamilySpec,
    LoggerSpec,
    SampleOption,
)
from zoo.errors import UsageError, ZooError

__version__ = "0.1.0"

_moved.install()  # the plugin API's import paths before the role layout, for one release

__all__ = [
    "CatalogueEntry",
    "Config",
    "DataSourceSpec",
    "ExporterSpec",
    "FamilySpec",
    "LoggerSpec",
    "SampleOption",
    "UsageError",
    "ZooError",
    "__version__",
    "hookimpl",
    "plugin",
    "setting",
]
