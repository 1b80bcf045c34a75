"""zoo-lsgan: an example third-party zoo plugin (family, catalogue entry, exporter, command)."""

__version__ = "0.1.0"
