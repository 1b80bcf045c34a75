"""Pretrained weights: hash-checked, atomic, and nothing half-written left behind."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest

from zoo.download import download, weights_dir
from zoo.errors import ZooError
from zoo.specs import CatalogueEntry, Weights


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def entry(url, sha):
    return CatalogueEntry("toy", "gan", "digits", weights=Weights(url, sha))


def test_download_verifies_and_caches(server):
    root, base = server
    payload = b"weights" * 1000
    (root / "w.safetensors").write_bytes(payload)
    path = download(entry(f"{base}/w.safetensors", hashlib.sha256(payload).hexdigest()))
    assert path.read_bytes() == payload
    (root / "w.safetensors").unlink()  # cached: no second request
    assert download(entry(f"{base}/w.safetensors", hashlib.sha256(payload).hexdigest())) == path


def test_bad_hash_keeps_nothing(server):
    root, base = server
    (root / "w.safetensors").write_bytes(b"tampered")
    with pytest.raises(ZooError, match="sha256"):
        download(entry(f"{base}/w.safetensors", "0" * 64))
    assert not weights_dir().exists() or list(weights_dir().iterdir()) == []


def test_unreachable_keeps_nothing(server):
    _, base = server
    with pytest.raises(ZooError, match="cannot download"):
        download(entry(f"{base}/missing.safetensors", "0" * 64))
    assert not weights_dir().exists() or list(weights_dir().iterdir()) == []
