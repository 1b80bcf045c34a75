"""Atomic file writes, locks, symlink-safe opens and file hashes: a crash or Ctrl-C never leaves a
half-written file behind, and a link planted in a shared folder is never followed.

Temporary files and folders are named ``.NAME.HOST-PID.XXXX.tmp`` beside their target. A
process killed outright (kill -9, a lost node) cannot clean up after itself, so the next
write beside the same target removes what dead processes of this host left for it, and
nothing else: a name that merely ends in ``.tmp`` is someone else's file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class LockTimeout(Exception):
    """Another process held a lock for longer than the caller would wait."""


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stale_temporaries(folder: Path, target: str | None = None) -> list[Path]:
    """zoo's temporaries in ``folder`` (of ``target`` only, when given) whose process, on this
    host, is dead: the only names a cleanup may remove."""
    if not folder.is_dir():
        return []
    host = re.escape(socket.gethostname())
    name = re.escape(target) if target is not None else ".+"
    pattern = re.compile(rf"\.{name}\.{host}-(\d+)\.[A-Za-z0-9_]+\.tmp")
    found = []
    for entry in folder.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))):
            found.append(entry)
    return found


def remove_stale(folder: Path, target: str | None = None) -> None:
    for leftover in stale_temporaries(folder, target):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _temp_prefix(path: Path) -> str:
    """The prefix of this process's temporary names for ``path``, after removing those that
    dead processes of this host left behind."""
    remove_stale(path.parent, path.name)
    return f".{path.name}.{_owner()}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename
    (a symlink at ``path`` is replaced, never followed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; a plain open would not
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that is renamed to ``path`` (which must not exist) on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def staging_dir(beside: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``beside`` (same file system, so its files can be
    renamed into place); it is removed afterwards with whatever is left in it."""
    parent = Path(beside).parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(Path(beside)), suffix=".tmp", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: Path, path: Path) -> None:
    """Put folder ``new`` at ``path`` whole, replacing what is there: the old folder is first
    renamed aside to a temporary name (which a later cleanup removes if a kill comes between
    the renames), so ``path`` never holds a mix of the two."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    if path.is_dir():
        aside = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
        os.rename(path, aside)  # onto the empty folder just made
        os.rename(new, path)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(new, path)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def open_own_file(path: Path, *, append: bool) -> int:
    """A write descriptor for ``path`` that never follows a symlink: appending to an existing
    file only when it is a regular file of this user's (else it is removed, a link itself and
    not its target, and started anew), creating it exclusively otherwise."""
    if append:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # ELOOP: a symlink, removed below
                raise
        else:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
                return fd
            os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, 0o666)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, on_wait: str = "") -> Iterator[None]:
    """Hold an exclusive lock named ``path`` (flock on a file that exists only while held).

    The file is opened without following links and never truncated, so a symlink planted at
    its name cannot touch another file; it is removed on release, and a waiter that wakes up
    holding a file that was removed meanwhile tries again on the current one.
    """
    end = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        raise LockTimeout(on_wait or str(path)) from None
                    time.sleep(0.05)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (
                held.st_ino,
                held.st_dev,
            ):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder before us removed this file: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def lock_holder(path: Path) -> str:
    """The pid written into a held `file_lock`, or ``?``."""
    try:
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as f:
            text = f.read(32).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
