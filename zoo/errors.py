"""Errors that the CLI turns into a one-line message and an exit code."""

from __future__ import annotations


class ZooError(Exception):
    """A runtime failure the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(ZooError):
    """Bad input on the command line or in a config (exit code 2)."""

    exit_code = 2
