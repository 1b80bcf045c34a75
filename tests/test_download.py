"""Downloads against a real HTTP server on 127.0.0.1 that misbehaves on request: it drops
connections, stalls, trickles, serves wrong bytes, redirects and ignores Range."""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zoo.contract.specs import CatalogueEntry, Weights
from zoo.errors import UsageError
from zoo.registry.discovery import build_registry, set_registry
from zoo.store.download import DownloadError, DownloadOptions, fetch
from zoo.store.sources import cache_path, pretrained

PAYLOAD = bytes(range(256)) * 214  # 54,784 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAST = DownloadOptions(timeout=2.0, retries=3, deadline=30.0, backoff=0.05)


@dataclass
class Plan:
    """How the server answers one path: ``modes`` are used up one request at a time, then
    ``normal`` (Range honoured)."""

    body: bytes = PAYLOAD
    modes: list[str] = field(default_factory=list)
    cut: int = 27_392  # where "drop" and "stall" stop sending
    location: str = ""  # for "redirect"
    delay: float = 0.0  # seconds between 4 KiB chunks ("trickle")
    etag: bool = True  # send a strong ETag (the body's hash) and honour If-Range


class Server:
    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.if_range: list[str | None] = []
        self.auth: list[str | None] = []  # Authorization headers, one per request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                server.if_range.append(self.headers.get("If-Range"))
                server.auth.append(self.headers.get("Authorization"))
                plan = server.plans.get(self.path.split("?")[0])
                if plan is None:
                    self.send_error(404, "Not Found")
                    return
                mode = plan.modes.pop(0) if plan.modes else "normal"
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", plan.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "error500":
                    self.send_error(500, "Internal Server Error")
                    return
                if mode == "416":
                    self.send_error(416, "Range Not Satisfiable")
                    return
                if mode == "endless":  # a body that never ends, and no length
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for _ in range(2000):  # 128 MB at most
                            self.wfile.write(bytes(65536))
                    except OSError:
                        pass
                    return
                body, start = plan.body, 0
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                wanted = self.headers.get("Range")
                fresh = not plan.etag or self.headers.get("If-Range") in (None, etag)
                if wanted and mode != "norange" and fresh:
                    start = int(wanted.removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                    shown = 0 if mode == "badrange" else start
                    self.send_header("Content-Range", f"bytes {shown}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                if plan.etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                rest = body[start:]
                if mode in ("drop", "stall"):
                    self.wfile.write(rest[: max(plan.cut - start, 0)])
                    self.wfile.flush()
                    if mode == "stall":
                        time.sleep(4)
                    self.close_connection = True
                    return
                for i in range(0, len(rest), 4096):
                    try:
                        self.wfile.write(rest[i : i + 4096])
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(plan.delay)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, path: str, **plan: object) -> str:
        self.plans[path] = Plan(**plan)  # type: ignore[arg-type]
        return self.base + path


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def get(url: str, dest: Path, sha: str | None = SHA, size: int | None = len(PAYLOAD)) -> Path:
    return fetch(url, dest, sha256=sha, size=size, label="toy weights", options=FAST)


def test_downloads_and_verifies(server, tmp_path):
    path = get(server.serve("/w.safetensors"), tmp_path / "w.safetensors")
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no lock left behind


def test_dropped_connection_resumes_with_range(server, tmp_path, capsys):
    url = server.serve("/w.safetensors", modes=["drop"])
    assert get(url, tmp_path / "w.safetensors").read_bytes() == PAYLOAD
    assert server.requests == [("/w.safetensors", None), ("/w.safetensors", "bytes=27392-")]
    assert "connection closed after 27,392 of 54,784 bytes; retrying" in capsys.readouterr().err


def test_stalled_server_hits_the_read_timeout_then_resumes(server, tmp_path, capsys):
    url = server.serve("/w.safetensors", modes=["stall"])
    options = DownloadOptions(timeout=0.5, retries=2, deadline=30, backoff=0.05)
    fetch(url, tmp_path / "w", sha256=SHA, size=len(PAYLOAD), label="toy", options=options)
    assert server.requests[-1] == ("/w.safetensors", "bytes=27392-")
    assert "read timeout after 27,392 of 54,784 bytes" in capsys.readouterr().err


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url = server.serve("/w.safetensors", modes=["drop", "norange"])
    assert get(url, tmp_path / "w.safetensors").read_bytes() == PAYLOAD


def test_retries_run_out_with_a_message_that_says_how_far_it_got(server, tmp_path):
    url = server.serve("/w.safetensors", modes=["drop"] * 4, cut=30_000)
    with pytest.raises(DownloadError) as err:
        get(url, tmp_path / "w.safetensors")
    message = str(err.value)
    assert "connection closed after" in message and "4 attempts" in message
    assert "run the same command again to resume" in message
    # the partial file stays for the next run, which resumes it
    assert (tmp_path / "w.safetensors.part").stat().st_size == 30_000
    assert get(url, tmp_path / "w.safetensors").read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=30000-"


def test_server_errors_are_retried_but_404_is_not(server, tmp_path):
    url = server.serve("/w.safetensors", modes=["error500"])
    assert get(url, tmp_path / "a").read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="HTTP 404 Not Found"):
        get(server.base + "/missing", tmp_path / "b")
    assert [p for p, _ in server.requests].count("/missing") == 1


def test_wrong_bytes_are_refused_and_nothing_is_kept(server, tmp_path):
    url = server.serve("/w.safetensors", body=bytes(len(PAYLOAD)))
    with pytest.raises(DownloadError, match=r"its sha256 is .* expected"):
        get(url, tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()
    assert not (tmp_path / "w.safetensors.part").exists()


def test_size_from_content_length_must_match_the_catalogue(server, tmp_path):
    url = server.serve("/w.safetensors", body=PAYLOAD[:1000])
    with pytest.raises(DownloadError, match="offers 1,000 bytes but the catalogue records 54,784"):
        get(url, tmp_path / "w.safetensors")
    assert list(tmp_path.iterdir()) == []  # neither the partial file nor a lock is kept


def test_redirects_are_followed_within_the_scheme_only(server, tmp_path):
    server.serve("/real", body=PAYLOAD)
    url = server.serve("/moved", modes=["redirect"], location="/real")
    assert get(url, tmp_path / "a").read_bytes() == PAYLOAD
    for target in ("file:///etc/passwd", f"https://127.0.0.1:{server.base.rsplit(':', 1)[1]}/x"):
        url = server.serve("/evil", modes=["redirect"], location=target)
        with pytest.raises(DownloadError, match="refusing to follow a redirect from http to"):
            get(url, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_only_http_and_https_urls(tmp_path):
    with pytest.raises(UsageError, match="only http:// and https://"):
        get("file:///etc/passwd", tmp_path / "x")


def test_trickle_prints_a_line_per_tenth_and_the_deadline_holds(server, tmp_path, capsys):
    url = server.serve("/w.safetensors", delay=0.01)
    get(url, tmp_path / "a")
    lines = [line for line in capsys.readouterr().err.splitlines() if "%" in line]
    assert [line.split(": ")[-1].split("%")[0] for line in lines] == [
        str(p) for p in range(10, 101, 10)
    ]
    server.serve("/slow", delay=0.5)
    slow = DownloadOptions(timeout=2, retries=0, deadline=1.0)
    with pytest.raises(DownloadError, match="deadline passed after"):
        fetch(server.base + "/slow", tmp_path / "b", sha256=SHA, size=None, label="t", options=slow)


def _entry(url: str = "", file: str = "") -> CatalogueEntry:
    return CatalogueEntry(
        "toy-mnist", "gan", "mnist-5k", weights=Weights(SHA, len(PAYLOAD), file=file, url=url)
    )


def test_offline_never_touches_the_network(server, monkeypatch):
    url = server.serve("/w.safetensors")
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(
        DownloadError, match=r"toy-mnist-.*\.safetensors is missing and ZOO_OFFLINE"
    ):
        pretrained(_entry(url))
    assert server.requests == []


def test_mirror_base_url(server, monkeypatch):
    server.serve("/mirror/toy-mnist/model.safetensors")
    monkeypatch.setenv("ZOO_WEIGHTS_URL", server.base + "/mirror/")
    resolved = pretrained(_entry("https://unreachable.invalid/model.safetensors"))
    assert resolved.path.read_bytes() == PAYLOAD
    assert (
        "downloaded from " + server.base + "/mirror/toy-mnist/model.safetensors" in resolved.origin
    )


def test_cached_file_is_reverified_and_refetched_when_damaged(server, capsys):
    url = server.serve("/w.safetensors")
    path = pretrained(_entry(url)).path
    assert pretrained(_entry(url)).origin.endswith("from the cache")
    path.write_bytes(PAYLOAD[:-1] + b"x")
    assert pretrained(_entry(url)).path.read_bytes() == PAYLOAD
    assert "is damaged (its sha256 is" in capsys.readouterr().err
    assert len(server.requests) == 2


def test_shipped_file_is_used_in_place_and_verified(tmp_path, server):
    shipped = tmp_path / "model.safetensors"
    shipped.write_bytes(PAYLOAD)
    assert pretrained(_entry(file=str(shipped))).path == shipped
    shipped.write_bytes(PAYLOAD[:100])  # damaged and no URL: says what to do
    with pytest.raises(Exception, match="reinstall"):
        pretrained(_entry(file=str(shipped)))


def test_download_from_a_copied_file(tmp_path, zoo):
    reg = build_registry()
    reg.catalogue["toy-mnist"] = _entry("https://unreachable.invalid/m.safetensors")
    set_registry(reg)
    try:
        good, bad = tmp_path / "good", tmp_path / "bad"
        good.write_bytes(PAYLOAD)
        bad.write_bytes(PAYLOAD[:-5])
        r = zoo("download", "toy-mnist", "--from", str(bad))
        assert r.code == 2 and "has 54,779 bytes, expected 54,784" in r.err
        r = zoo("download", "toy-mnist", "--from", str(good))
        assert r.code == 0, r.err
        assert cache_path(reg.catalogue["toy-mnist"]).read_bytes() == PAYLOAD
        r = zoo("download", "toy-mnist", "--offline")  # now cached: no network needed
        assert r.code == 0 and "from the cache" in r.out
    finally:
        set_registry(None)


CHILD = """
import sys
from pathlib import Path
from zoo.store.download import DownloadOptions, fetch
fetch(sys.argv[1], Path(sys.argv[2]), sha256=sys.argv[3], size=int(sys.argv[4]), label="toy",
      options=DownloadOptions(timeout=5, retries=2, deadline=60, backoff=0.05))
"""


def _child(url: str, dest: Path) -> subprocess.Popen:
    args = [sys.executable, "-c", CHILD, url, str(dest), SHA, str(len(PAYLOAD))]
    return subprocess.Popen(args, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": "."})


def _wait_for(predicate, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_kill_9_mid_download_then_the_next_run_resumes(server, tmp_path):
    url = server.serve("/w.safetensors", delay=0.05)
    dest = tmp_path / "w.safetensors"
    part = dest.with_name(dest.name + ".part")
    child = _child(url, dest)
    _wait_for(lambda: part.exists() and part.stat().st_size >= 8192)
    child.send_signal(signal.SIGKILL)
    child.wait()
    have = part.stat().st_size
    server.plans["/w.safetensors"].delay = 0
    assert get(url, dest).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/w.safetensors", f"bytes={have}-")
    assert not part.exists()


def test_parallel_processes_download_once(server, tmp_path):
    url = server.serve("/w.safetensors", delay=0.01)
    dest = tmp_path / "w.safetensors"
    children = [_child(url, dest) for _ in range(3)]
    for child in children:
        assert child.wait(60) == 0, child.stderr.read().decode()
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/w.safetensors", None)]


# Hardening, round 2: shared caches, unbounded bodies, spliced resumes, refreshes, leftovers


def test_a_symlink_planted_at_the_partial_file_is_never_followed(server, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    dest = tmp_path / "w.safetensors"
    (tmp_path / "w.safetensors.part").symlink_to(victim)
    assert get(server.serve("/w.safetensors"), dest).read_bytes() == PAYLOAD
    assert victim.read_text() == "precious"
    assert not dest.is_symlink() and dest.is_file()


def test_a_symlink_planted_at_the_lock_never_truncates_its_target(server, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "w.safetensors.lock").symlink_to(victim)
    with pytest.raises(DownloadError, match="cannot write"):
        get(server.serve("/w.safetensors"), tmp_path / "w.safetensors")
    assert victim.read_text() == "precious"


def test_a_symlinked_url_stamp_is_replaced_not_written_through(server, monkeypatch, tmp_path):
    from zoo.store.sources import resolve

    body = _safetensors_bytes()
    url = server.serve("/m.safetensors", body=body)
    first = resolve(url).path
    stamp = first.with_name(first.name + ".sha256")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    stamp.unlink()
    stamp.symlink_to(victim)
    assert resolve(url).path.read_bytes() == body
    assert victim.read_text() == "precious" and not stamp.is_symlink()


def test_a_body_that_never_ends_stops_at_the_known_size(server, tmp_path):
    url = server.serve("/w.safetensors", modes=["endless"] * 2)
    with pytest.raises(DownloadError, match="sent more than the 54,784 bytes"):
        get(url, tmp_path / "w.safetensors")
    assert list(tmp_path.iterdir()) == []
    small = DownloadOptions(timeout=2, retries=0, deadline=30, max_bytes=100_000)
    with pytest.raises(DownloadError, match="sent more than the 100,000 bytes"):
        fetch(url, tmp_path / "u", sha256=None, size=None, label="t", options=small)
    assert list(tmp_path.iterdir()) == []


def test_a_resume_at_another_offset_is_never_spliced(server, tmp_path):
    url = server.serve("/w.safetensors", modes=["drop", "badrange"])
    assert get(url, tmp_path / "w.safetensors").read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/w.safetensors", None)  # started over


def test_a_file_that_changed_on_the_server_is_not_spliced_into_a_url_source(server, tmp_path):
    url = server.serve("/m.safetensors", body=_safetensors_bytes(), modes=["drop"], cut=200)
    with pytest.raises(DownloadError):
        fetch(url, tmp_path / "m", sha256=None, size=None, label="t", options=NO_RETRY)
    server.plans["/m.safetensors"].body = _safetensors_bytes(2.0)  # a new version
    got = fetch(url, tmp_path / "m", sha256=None, size=None, label="t", options=NO_RETRY)
    assert got.read_bytes() == _safetensors_bytes(2.0)
    assert server.if_range[-1] is not None  # the first response's ETag was sent


def test_a_url_source_that_does_not_load_is_never_stamped(server):
    from zoo.store.sources import resolve

    url = server.serve("/m.safetensors", body=b"<html>sign in</html>")
    with pytest.raises(DownloadError, match="is not a safetensors file"):
        resolve(url)
    assert not list((Path("cache") / "weights" / "urls").rglob("*.sha256"))


def test_a_416_discards_the_partial_file(server, tmp_path, capsys):
    url = server.serve("/w.safetensors", modes=["drop", "416"])
    assert get(url, tmp_path / "w.safetensors").read_bytes() == PAYLOAD
    assert "refused to resume (HTTP 416); starting over" in capsys.readouterr().err
    assert server.requests[-1] == ("/w.safetensors", None)


def test_force_keeps_the_verified_copy_until_a_new_one_is_verified(server, zoo):
    url = server.serve("/w.safetensors")
    entry = _entry(url)
    cached = pretrained(entry).path
    server.plans["/w.safetensors"].body = bytes(len(PAYLOAD))  # the server now serves junk
    with pytest.raises(DownloadError, match="not the expected file"):
        pretrained(entry, force=True)
    assert cached.read_bytes() == PAYLOAD
    server.plans["/w.safetensors"].body = PAYLOAD
    assert pretrained(entry, force=True).origin.startswith("pretrained toy-mnist weights downl")


def test_credentials_in_urls_are_used_once_and_never_printed(server, tmp_path, capsys):
    url = server.serve("/w.safetensors", modes=["drop"]).replace("://", "://alice:s3cret@")
    get(url + "?X-Token=abc", tmp_path / "w.safetensors")
    assert server.auth[0] == "Basic " + __import__("base64").b64encode(b"alice:s3cret").decode()
    err = capsys.readouterr().err
    server.serve("/missing-too")
    with pytest.raises(DownloadError) as exc:
        get(server.base.replace("://", "://alice:s3cret@") + "/gone?sig=abc", tmp_path / "x")
    assert "s3cret" not in str(exc.value) + err and "sig=abc" not in str(exc.value)
    assert "alice:***@" in str(exc.value)


@pytest.mark.parametrize("value", ["0", "nan", "inf", "-1", "soon"])
def test_bad_download_settings_are_one_line(value, monkeypatch, zoo):
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", value)
    r = zoo("download", "dcgan-mnist")
    assert r.code == 2 and "ZOO_DOWNLOAD_TIMEOUT" in r.err and len(r.err.splitlines()) == 1


def test_an_unknown_host_fails_at_once_without_advising_a_resume(tmp_path):
    start = time.monotonic()
    with pytest.raises(DownloadError, match="cannot resolve the host") as exc:
        get("http://no-such-host.invalid/w.safetensors", tmp_path / "w")
    assert time.monotonic() - start < 10 and "resume" not in str(exc.value)


def test_download_from_a_device_is_not_a_missing_file(zoo):
    r = zoo("download", "dcgan-mnist", "--from", "/dev/zero")
    assert r.code == 2 and "is not a regular file" in r.err


NO_RETRY = DownloadOptions(timeout=2.0, retries=0, deadline=30.0, backoff=0.05)


def _safetensors_bytes(value: float = 1.0) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"w": np.full((64,), value, np.float32)})
