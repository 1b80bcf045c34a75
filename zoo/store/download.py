"""Files from elsewhere: downloaded once into the cache, resumed, locked and verified.

A download streams into ``NAME.part`` beside its final name under a file lock, so parallel
processes (the ranks of one job) fetch a file once and the others wait for it. An interrupted
transfer, a dropped connection or a process killed with SIGKILL leaves the ``.part`` file, and
the next attempt resumes it with an HTTP Range request (or starts over when the server ignores
Range, checking the server's Content-Range and sending If-Range with the first response's
ETag or Last-Modified, so a file that changed on the server is never spliced). No more bytes
are written than the catalogue's size, Content-Length or ``max_bytes`` allow. The file is
renamed into place only after its size and sha256 match; a cached file is verified again
before every use, and a verified copy is replaced only by a verified download.

The cache may be shared, so nothing in it is trusted: partial files are opened without
following symlinks and resumed only when they are this user's regular files, locks never
truncate what their name points at, and every other file is written by an atomic rename. Only
http and https are fetched, and redirects never change the scheme; credentials in a URL
(``user:pass@``) are sent once as HTTP basic auth, never to a redirect's host, and no message
prints them or a query string. Settings: `DownloadOptions` (ZOO_DOWNLOAD_TIMEOUT,
ZOO_DOWNLOAD_RETRIES, ZOO_DOWNLOAD_DEADLINE, ZOO_DOWNLOAD_MAX_BYTES); ZOO_OFFLINE=1 never
touches the network.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import re
import shutil
import socket
import stat
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from zoo import __version__
from zoo.base.files import (
    LockTimeout,
    atomic_path,
    file_lock,
    open_own_file,
    sha256_file,
    write_text,
)
from zoo.errors import UsageError, ZooError

CHUNK = 1 << 16
SCHEMES = ("http", "https")


class DownloadError(ZooError):
    """A download failed; the message says how far it got and what to do."""


class _Retry(Exception):
    """A transient failure (dropped connection, stall, 5xx): try again after a pause."""


class _Restart(_Retry):
    """The partial file cannot be resumed: discard it and try again from the start."""


class _TooLong(Exception):
    """The server sent more bytes than the file can have."""


def cache_dir() -> Path:
    """zoo's cache: downloaded weights and ONNX exports made for sampling ($ZOO_CACHE)."""
    return Path(os.environ.get("ZOO_CACHE", Path.home() / ".cache" / "zoo"))


def weights_dir() -> Path:
    return cache_dir() / "weights"


def offline() -> bool:
    """ZOO_OFFLINE=1 (or `--offline`): use shipped and cached files, never the network."""
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _env_number(name: str, default: float, kind: type = float, positive: bool = True) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "a positive" if positive else "a non-negative"
        raise UsageError(f"{name}={text!r}: use {bound} finite number, or unset it")
    return value


def redact(url: str) -> str:
    """``url`` fit to print: no password and no query string (presigned tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if parts.username is not None:
        host = f"{parts.username}:***@{host}" if parts.password else f"{parts.username}@{host}"
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def _split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without ``user:pass@``, and the basic-auth header value it carried."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    plain = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return plain, "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class DownloadOptions:
    """How patient a download is. ``timeout``: seconds one read may wait for data;
    ``retries``: further attempts after a transient failure, with back-off doubling from
    ``backoff`` seconds; ``deadline``: seconds for the whole download, waiting included."""

    timeout: float = 30.0
    retries: int = 5
    deadline: float = 3600.0
    backoff: float = 1.0
    max_bytes: int = 4 << 30  # a file of unknown size (a URL source) is cut off past this

    @classmethod
    def from_env(cls) -> DownloadOptions:
        return cls(
            timeout=_env_number("ZOO_DOWNLOAD_TIMEOUT", cls.timeout),
            retries=int(_env_number("ZOO_DOWNLOAD_RETRIES", cls.retries, int, positive=False)),
            deadline=_env_number("ZOO_DOWNLOAD_DEADLINE", cls.deadline),
            max_bytes=int(_env_number("ZOO_DOWNLOAD_MAX_BYTES", cls.max_bytes, int)),
        )


def check_file(path: Path, sha256: str, size: int | None) -> str | None:
    """What is wrong with ``path`` as the file with this sha256 and size, or None."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    actual = info.st_size
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
                f"{redact(req.full_url)} redirects to {redact(new_url)}: refusing to follow a "
                f"redirect from {old} to {new}"
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


@dataclass
class _Part:
    """The ``.part`` file of a download and what its first response said about the file: a
    validator (ETag or Last-Modified) that a resume sends as If-Range."""

    path: Path

    @property
    def record(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    def validator(self, url: str) -> str | None:
        try:
            saved = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(saved, dict) and saved.get("url") == url
        value = saved.get("validator") if ok else None
        return value if isinstance(value, str) else None

    def remember(self, url: str, validator: str | None) -> None:
        if validator:
            write_text(self.record, json.dumps({"url": url, "validator": validator}))
        else:
            self.record.unlink(missing_ok=True)

    def size(self) -> int:
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return 0
        return info.st_size if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() else 0

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.record.unlink(missing_ok=True)


def _open(url: str, offset: int, timeout: float, validator: str | None) -> http.client.HTTPResponse:
    plain, auth = _split_credentials(url)
    request = urllib.request.Request(
        plain, headers={"User-Agent": f"zoo-gen/{__version__}", "Accept-Encoding": "identity"}
    )
    if auth:  # unredirected: a redirect to another host never receives the credentials
        request.add_unredirected_header("Authorization", auth)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        if validator:
            request.add_header("If-Range", validator)
    try:
        return _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is no prefix of this file
            raise _Restart("the server refused to resume (HTTP 416); starting over") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {redact(url)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, DownloadError):
            raise reason from None
        if isinstance(reason, socket.gaierror):  # no such host: retrying will not help
            host = urlsplit(url).hostname
            raise DownloadError(
                f"cannot resolve the host {host!r} of {redact(url)} ({reason.strerror}); check "
                "the URL and the network, or set ZOO_OFFLINE=1 to use only local files"
            ) from None
        raise _Retry(f"cannot connect ({reason})") from None


_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _resumed_at(response: http.client.HTTPResponse) -> int | None:
    """Where a 206 response's body starts, from its Content-Range (None if unreadable)."""
    match = _RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    return int(match.group(1)) if match else None


def _transfer(
    url: str,
    part: _Part,
    size: int | None,
    options: DownloadOptions,
    end: float,
    label: str,
    resumable: bool,
) -> None:
    """One attempt: append to ``part`` from where it stops until the server's length."""
    have = part.size()
    validator = part.validator(url)
    if have and not (validator or resumable):
        have = 0  # nothing tells whether the file changed since: start over
    if size is not None and have >= size:
        if have == size:
            return
        have = 0  # longer than the file can be: not ours to resume
    with _open(url, have, options.timeout, validator) as response:
        if have and (response.status != 206 or _resumed_at(response) != have):
            if response.status == 206:  # a range we did not ask for: never splice it
                raise _Restart("the server resumed at another offset than asked; starting over")
            have = 0  # the server ignored Range or the file changed (If-Range): start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        if size is not None and total is not None and total != size:
            part.discard()
            raise DownloadError(
                f"{redact(url)} offers {total:,} bytes but the catalogue records {size:,}: the "
                "file changed on the server or the catalogue entry is wrong; nothing was kept"
            )
        limit = size if size is not None else (total or options.max_bytes)
        if limit > options.max_bytes and size is None:
            raise DownloadError(
                f"{redact(url)} offers {limit:,} bytes, more than the {options.max_bytes:,} "
                "allowed; raise ZOO_DOWNLOAD_MAX_BYTES if the file is meant to be that large"
            )
        if not have:
            etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
            part.remember(url, etag if etag and not etag.startswith("W/") else modified)
        progress = _Progress(label, total or 0, have)
        fd = open_own_file(part.path, append=bool(have))
        try:
            with os.fdopen(fd, "ab") as f:
                got = _copy(response, f, progress, have, end, total, limit)
        except _TooLong:
            part.discard()
            raise DownloadError(
                f"{redact(url)} sent more than the {limit:,} bytes it should have; nothing was "
                "kept (report the server, or raise ZOO_DOWNLOAD_MAX_BYTES for a larger file)"
            ) from None
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
    limit: int,
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
        if got + len(chunk) > limit:
            raise _TooLong
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
    force: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` once, verified against ``sha256`` and ``size`` (when
    known), resuming a partial file; concurrent callers wait on a lock for the first one.
    ``force`` downloads again even over a verified ``dest``, which stays until the new file is
    verified."""
    options = options or DownloadOptions.from_env()
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise UsageError(
            f"cannot download {redact(url)}: only http:// and https:// URLs are fetched"
        )
    if offline():
        raise DownloadError(
            f"{label}: {dest} is missing and ZOO_OFFLINE is set; copy the file there (or use "
            "`zoo download NAME --from FILE`), or unset ZOO_OFFLINE to download it"
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(dest.with_name(dest.name + ".lock"), options.deadline):
            # another process may have finished it while we waited (not hashed under --force)
            done = not force and dest.is_file()
            if done and (sha256 is None or check_file(dest, sha256, size) is None):
                return dest
            return _download(url, dest, sha256, size, label, options)
    except LockTimeout:
        raise DownloadError(
            f"{label}: another process held {dest}.lock for the whole {options.deadline:g} s "
            "deadline; raise ZOO_DOWNLOAD_DEADLINE or stop the other process"
        ) from None
    except OSError as exc:  # a read-only or full cache, a folder where a file should be
        raise DownloadError(
            f"{label}: cannot write {exc.filename or dest} ({exc.strerror or exc}); free space "
            "or make the cache writable (ZOO_CACHE chooses where it is)"
        ) from None


def _download(
    url: str,
    dest: Path,
    sha256: str | None,
    size: int | None,
    label: str,
    options: DownloadOptions,
) -> Path:
    end = time.monotonic() + options.deadline
    part = _Part(dest.with_name(dest.name + ".part"))
    for attempt in range(options.retries + 1):
        try:
            _transfer(url, part, size, options, end, label, resumable=sha256 is not None)
            break
        except _Retry as exc:
            if isinstance(exc, _Restart):
                part.discard()
            pause = min(options.backoff * 2**attempt, 30.0, end - time.monotonic())
            if attempt == options.retries or pause < 0:
                tries = f"{attempt + 1} attempt{'s' * bool(attempt)}"
                kept = part.size()
                advice = "run the same command again to resume" if kept else "try again later"
                raise DownloadError(
                    f"cannot download {label} from {redact(url)}: {exc} ({tries}; {advice})"
                ) from None
            print(f"zoo: {label}: {exc}; retrying in {pause:.1f} s", file=sys.stderr)
            time.sleep(pause)
    problem = check_file(part.path, sha256, size) if sha256 else None
    if problem:
        part.discard()
        raise DownloadError(
            f"{label} from {redact(url)} is not the expected file: {problem}; nothing was kept "
            "(retry, or report a bad catalogue entry)"
        )
    os.replace(part.path, dest)
    part.record.unlink(missing_ok=True)
    return dest


def copy_verified(source: Path, dest: Path, sha256: str, size: int, label: str) -> Path:
    """Fill the cache from a copied file (`zoo download NAME --from FILE`), verified first."""
    if not source.exists():
        raise UsageError(f"{source} does not exist")
    if not source.is_file():
        raise UsageError(f"{source} is not a regular file; give the downloaded weights file")
    problem = check_file(source, sha256, size)
    if problem:
        raise UsageError(f"{source} is not {label}: {problem}")
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest
