"""Errors that the CLI turns into a one-line message and an exit code."""

from __future__ import annotations

import os


def debug_enabled() -> bool:
    """`zoo --debug` or ZOO_DEBUG=1: tracebacks for errors, timings of plugin hooks."""
    return os.environ.get("ZOO_DEBUG", "") not in ("", "0")


class ZooError(Exception):
    """A runtime failure the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(ZooError):
    """Bad input on the command line or in a config (exit code 2)."""

    exit_code = 2
