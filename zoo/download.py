"""Files from elsewhere: downloaded once into the cache, resumed, locked and verified.

A download streams into ``NAME.part`` beside its final name under a file lock, so parallel
processes (the ranks of one job) fetch a file once and the others wait for it. An interrupted
transfer, a dropped connection or a process killed with SIGKILL leaves the ``.part`` file, and
the next attempt resumes it with an HTTP Range request (or starts over when the server ignores
Range). The file is renamed into place only after its size and sha256 match; a cached file is
verified again before every use. Only http and https are fetched, and redirects never change
the scheme. Settings: `DownloadOptions` (ZOO_DOWNLOAD_TIMEOUT, ZOO_DOWNLOAD_RETRIES,
ZOO_DOWNLOAD_DEADLINE); ZOO_OFFLINE=1 never touches the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urljoin, urlsplit

from zoo import __version__
from zoo.errors import UsageError, ZooError
from zoo.files import atomic_path

CHUNK = 1 << 16
SCHEMES = ("http", "https")


class DownloadError(ZooError):
    """A download failed; the message says how far it got and what to do."""


class _Retry(Exception):
    """A transient failure (dropped connection, stall, 5xx): try again after a pause."""


def cache_dir() -> Path:
    """zoo's cache: downloaded weights and ONNX exports made for sampling ($ZOO_CACHE)."""
    return Path(os.environ.get("ZOO_CACHE", Path.home() / ".cache" / "zoo"))


def weights_dir() -> Path:
    return cache_dir() / "weights"


def offline() -> bool:
    """ZOO_OFFLINE=1 (or `--offline`): use shipped and cached files, never the network."""
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _env_number(name: str, default: float, kind: type = float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number") from None
    if value < 0:
        raise UsageError(f"{name} must not be negative (got {text})")
    return value


@dataclass(frozen=True)
class DownloadOptions:
    """How patient a download is. ``timeout``: seconds one read may wait for data;
    ``retries``: further attempts after a transient failure, with back-off doubling from
    ``backoff`` seconds; ``deadline``: seconds for the whole download, waiting included."""

    timeout: float = 30.0
    retries: int = 5
    deadline: float = 3600.0
    backoff: float = 1.0

    @classmethod
    def from_env(cls) -> DownloadOptions:
        return cls(
            timeout=_env_number("ZOO_DOWNLOAD_TIMEOUT", cls.timeout),
            retries=int(_env_number("ZOO_DOWNLOAD_RETRIES", cls.retries, int)),
            deadline=_env_number("ZOO_DOWNLOAD_DEADLINE", cls.deadline),
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, sha256: str, size: int | None) -> str | None:
    """What is wrong with ``path`` as the file with this sha256 and size, or None."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"it has {actual:,} bytes, expected {size:,}"
    digest = sha256_file(path)
    if digest != sha256:
        return f"its sha256 is {digest[:16]}..., expected {sha256[:16]}..."
    return None


class _SameScheme(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https to http (or to any other scheme)."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri") or ""
        new_url = urljoin(req.full_url, location)
        old, new = urlsplit(req.full_url).scheme, urlsplit(new_url).scheme
        if location and new != old:
            raise DownloadError(
                f"{req.full_url} redirects to {new_url}: refusing to follow a redirect from "
                f"{old} to {new}"
            )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_opener = urllib.request.build_opener(_SameScheme)


class _Progress:
    """A tqdm bar on a terminal; elsewhere (logs, CI) one line per 10%."""

    def __init__(self, label: str, total: int, done: int):
        self.label, self.total, self.done = label, total, done
        self.bar = None
        self.next_tenth = done * 10 // max(total, 1) + 1
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=done, unit="B", unit_scale=True, desc=label, file=sys.stderr
            )
        elif done:
            print(f"zoo: {label}: resuming at {done:,} of {total:,} bytes", file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        tenth = self.done * 10 // self.total if self.total else 0
        if tenth >= self.next_tenth:
            done, total = f"{self.done:,}", f"{self.total:,}"
            print(f"zoo: {self.label}: {tenth * 10}% ({done} of {total} bytes)", file=sys.stderr)
            self.next_tenth = tenth + 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"zoo-gen/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return _opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is no prefix of this file
            raise _Retry("the server refused to resume (HTTP 416); starting over") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, DownloadError):
            raise reason from None
        raise _Retry(f"cannot connect ({reason})") from None


def _transfer(
    url: str, part: Path, size: int | None, options: DownloadOptions, end: float, label: str
) -> None:
    """One attempt: append to ``part`` from where it stops until the server's length."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have >= size:
        if have == size:
            return
        have = 0  # longer than the file can be: not ours to resume
    with _open(url, have, options.timeout) as response:
        if have and response.status != 206:
            have = 0  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"{url} offers {total:,} bytes but the catalogue records {size:,}: the file "
                "changed on the server or the catalogue entry is wrong; nothing was kept"
            )
        progress = _Progress(label, total or 0, have)
        got = have
        try:
            with open(part, "ab" if have else "wb") as f:
                if not have:
                    f.truncate()
                got = _copy(response, f, progress, got, end, total)
        finally:
            progress.close()
    if total is not None and got < total:
        raise _Retry(f"connection closed after {got:,} of {total:,} bytes")


def _copy(
    response: http.client.HTTPResponse,
    f: IO[bytes],
    progress: _Progress,
    got: int,
    end: float,
    total: int | None,
) -> int:
    of_total = f" of {total:,}" if total else ""
    while True:
        if time.monotonic() > end:
            raise DownloadError(f"deadline passed after {got:,}{of_total} bytes")
        try:
            chunk = response.read1(CHUNK)  # what has arrived: a stall loses nothing
        except http.client.IncompleteRead as exc:
            f.write(exc.partial)
            got += len(exc.partial)
            raise _Retry(f"connection closed after {got:,}{of_total} bytes") from None
        except TimeoutError:
            raise _Retry(f"no data for a read timeout after {got:,}{of_total} bytes") from None
        except OSError as exc:
            raise _Retry(f"connection lost after {got:,}{of_total} bytes ({exc})") from None
        if not chunk:
            return got
        f.write(chunk)
        got += len(chunk)
        progress.update(len(chunk))


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None,
    label: str,
    options: DownloadOptions | None = None,
) -> Path:
    """Download ``url`` to ``dest`` once, verified against ``sha256`` and ``size`` (when
    known), resuming a partial file; concurrent callers wait on a lock for the first one."""
    from filelock import FileLock, Timeout

    options = options or DownloadOptions.from_env()
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise UsageError(f"cannot download {url}: only http:// and https:// URLs are fetched")
    if offline():
        raise DownloadError(
            f"{label}: {dest} is missing and ZOO_OFFLINE is set; copy the file there (or use "
            "`zoo download NAME --from FILE`), or unset ZOO_OFFLINE to download it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + options.deadline
    part = dest.with_name(dest.name + ".part")
    try:
        lock = FileLock(str(dest) + ".lock", timeout=max(options.deadline, 0))
        lock.acquire()
    except Timeout:
        raise DownloadError(
            f"{label}: another process held {dest}.lock for the whole {options.deadline:g} s "
            "deadline; raise ZOO_DOWNLOAD_DEADLINE or remove a stale lock"
        ) from None
    try:
        if dest.is_file() and (sha256 is None or check_file(dest, sha256, size) is None):
            return dest  # another process finished it while we waited
        for attempt in range(options.retries + 1):
            try:
                _transfer(url, part, size, options, end, label)
                break
            except _Retry as exc:
                pause = min(options.backoff * 2**attempt, 30.0, end - time.monotonic())
                if attempt == options.retries or pause < 0:
                    tries = f"{attempt + 1} attempt{'s' * bool(attempt)}"
                    raise DownloadError(
                        f"cannot download {label} from {url}: {exc} ({tries}; run the same "
                        "command again to resume)"
                    ) from None
                print(f"zoo: {label}: {exc}; retrying in {pause:.1f} s", file=sys.stderr)
                time.sleep(pause)
        problem = check_file(part, sha256, size) if sha256 else None
        if problem:
            part.unlink()
            raise DownloadError(
                f"{label} from {url} is not the expected file: {problem}; nothing was kept "
                "(retry, or report a bad catalogue entry)"
            )
        os.replace(part, dest)
        return dest
    finally:
        lock.release()


def copy_verified(source: Path, dest: Path, sha256: str, size: int, label: str) -> Path:
    """Fill the cache from a copied file (`zoo download NAME --from FILE`), verified first."""
    if not source.is_file():
        raise UsageError(f"{source} does not exist")
    problem = check_file(source, sha256, size)
    if problem:
        raise UsageError(f"{source} is not {label}: {problem}")
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest
