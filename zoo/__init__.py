"""zoo: a plugin-based zoo of generative image models.

This module stays light (no torch import) so that `zoo --help` and `zoo list` start fast.
The heavy API lives in `zoo.api`, the base class for families in `zoo.model`.
"""

from zoo.errors import UsageError, ZooError
from zoo.hookspecs import hookimpl, plugin
from zoo.settings import Config, setting
from zoo.specs import (
    CatalogueEntry,
    DataSourceSpec,
    ExporterSpec,
    FamilySpec,
    LoggerSpec,
    SampleOption,
)

__version__ = "0.1.0"

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
