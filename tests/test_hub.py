"""Remote models: ``https://...#sha256=`` and ``file://`` URLs, and ``hf://`` against a local stand-in Hub.

Everything runs against 127.0.0.1 or local files: the files are tiny srlab models made here, served by
http.server in a thread. Checked: the model loads and equals the served one, the cache holds it under the
one cache root, a second load needs no server, a hash mismatch is refused and leaves nothing in the cache,
offline is one line naming the URL and where to put the file, hostile references are refused.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading

import pytest
import torch

import srlab
from srlab.errors import ConfigError, WeightsError
from srlab.weights.hub import fetch_remote, parse_hf
from srlab.weights.io import save_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def _send(self, with_body: bool) -> None:
        self.requests.append(f"{self.command} {self.path}")
        body = self.files.get(self.path.split("?")[0])
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server API)
        self._send(True)

    def do_HEAD(self):  # noqa: N802
        self._send(False)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Handler
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SRLAB_CACHE", str(root))
    return root


def _files_under(folder) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.fixture(scope="module")
def tiny():
    """A tiny x2 SRVGG network (random weights)."""
    model, _ = srlab.build_model("srvgg", scale=2, num_feat=8, num_conv=2)
    return model.eval()


def _safetensors_bytes(model, tmp_path) -> bytes:
    path = save_model(tmp_path / "m.safetensors", model)
    return path.read_bytes()


def _same(a, b) -> bool:
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        return torch.equal(a(x), b.eval()(x))


# ------------------------------------------------------------------------------------------ URLs
def test_https_url_with_pinned_hash(server, cache, tiny, tmp_path):
    url, handler = server
    body = _safetensors_bytes(tiny, tmp_path)
    sha = hashlib.sha256(body).hexdigest()
    handler.files["/models/tiny%20x2.safetensors"] = body
    ref = f"{url}/models/tiny%20x2.safetensors#sha256={sha}"
    model, desc = srlab.load_model(ref)
    assert desc.arch == "srvgg" and desc.scale == 2 and _same(model, tiny)
    cached = cache / "weights" / "urls" / sha[:16] / "tiny_x2.safetensors"
    assert cached.read_bytes() == body
    # cached: a second load does not ask the server
    handler.requests.clear()
    assert srlab.load_model(ref)[1].scale == 2 and handler.requests == []


def test_url_hash_mismatch_leaves_nothing(server, cache, tiny, tmp_path):
    url, handler = server
    handler.files["/bad.safetensors"] = _safetensors_bytes(tiny, tmp_path)
    with pytest.raises(WeightsError, match="sha256 mismatch") as info:
        srlab.load_model(f"{url}/bad.safetensors#sha256={'ab' * 32}")
    assert "\n" not in str(info.value)
    assert _files_under(cache) == []


def test_url_needs_a_pinned_hash_and_a_known_scheme(cache):
    with pytest.raises(ConfigError, match="#sha256="):
        srlab.load_model("https://example.invalid/model.pth")
    with pytest.raises(ConfigError, match="64 hex"):
        srlab.load_model("https://example.invalid/model.pth#sha256=1234")
    with pytest.raises(ConfigError, match="64 hex"):
        srlab.load_model("https://example.invalid/model.pth#md5=" + "0" * 32)
    assert _files_under(cache) == []


def test_file_url(cache, tiny, tmp_path):
    src = save_model(tmp_path / "here.safetensors", tiny)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    model, desc = srlab.load_model(f"{src.as_uri()}#sha256={sha}")
    assert desc.scale == 2 and _same(model, tiny)
    assert _files_under(cache) == [os.path.join("weights", "urls", sha[:16], "here.safetensors")]
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        srlab.load_model(f"{src.as_uri()}#sha256={'0' * 64}")
    assert len(_files_under(cache)) == 1  # the mismatch added nothing


def test_url_offline_says_what_to_fetch_and_where(cache):
    sha = "1" * 64
    with pytest.raises(WeightsError) as info:
        srlab.load_model(f"http://127.0.0.1:9/w/model.pth#sha256={sha}")  # port 9: nothing listens
    msg = str(info.value)
    assert "http://127.0.0.1:9/w/model.pth" in msg and "\n" not in msg
    assert str(cache / "weights" / "urls" / sha[:16] / "model.pth") in msg
    assert _files_under(cache) == []


def test_a_damaged_cached_url_file_is_refused(server, cache, tiny, tmp_path):
    url, handler = server
    body = _safetensors_bytes(tiny, tmp_path)
    sha = hashlib.sha256(body).hexdigest()
    handler.files["/d.safetensors"] = body
    ref = f"{url}/d.safetensors#sha256={sha}"
    path = fetch_remote(ref, progress=False)
    path.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(WeightsError, match="delete the file"):
        srlab.load_model(ref)


# ------------------------------------------------------------------------------------------ hf://
@pytest.fixture
def hub(server, monkeypatch):
    pytest.importorskip("huggingface_hub")
    url, handler = server
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return url, handler


def test_hf_reference_downloads_into_the_cache(hub, cache, tiny, tmp_path):
    url, handler = hub
    body = _safetensors_bytes(tiny, tmp_path)
    handler.files["/someone/tiny-sr/resolve/main/weights/x2.safetensors"] = body
    model, desc = srlab.load_model("hf://someone/tiny-sr/weights/x2.safetensors")
    assert desc.scale == 2 and _same(model, tiny)
    local = cache / "hub" / "someone" / "tiny-sr" / "main" / "weights" / "x2.safetensors"
    assert local.read_bytes() == body
    handler.requests.clear()  # cached: no request at all the second time
    assert srlab.load_model("hf://someone/tiny-sr/weights/x2.safetensors")[1].scale == 2
    assert handler.requests == []


def test_hf_revision_and_pinned_hash(hub, cache, tiny, tmp_path):
    url, handler = hub
    body = _safetensors_bytes(tiny, tmp_path)
    sha = hashlib.sha256(body).hexdigest()
    handler.files[f"/someone/tiny-sr/resolve/{COMMIT}/m.safetensors"] = body
    ref = f"hf://someone/tiny-sr@{COMMIT}/m.safetensors#sha256={sha}"
    assert srlab.load_model(ref)[1].arch == "srvgg"
    assert (cache / "hub" / "someone" / "tiny-sr" / COMMIT / "m.safetensors").is_file()
    handler.files["/someone/tiny-sr/resolve/v2/m.safetensors"] = body
    with pytest.raises(WeightsError, match="pinned") as info:
        srlab.load_model(f"hf://someone/tiny-sr@v2/m.safetensors#sha256={'0' * 64}")
    assert "\n" not in str(info.value)
    assert not (cache / "hub" / "someone" / "tiny-sr" / "v2").exists()


def test_hf_missing_file_and_offline_are_one_line(hub, cache, monkeypatch):
    with pytest.raises(WeightsError) as info:
        srlab.load_model("hf://someone/tiny-sr/none.safetensors")
    msg = str(info.value)
    assert "hf://someone/tiny-sr/none.safetensors" in msg and "\n" not in msg
    assert _files_under(cache) == []
    import huggingface_hub.constants

    url, handler = hub
    handler.files["/someone/other/resolve/main/model.safetensors"] = b"never fetched"
    # HF_HUB_OFFLINE is read when huggingface_hub is imported; set it as that import would have
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    handler.requests.clear()
    with pytest.raises(WeightsError) as info:
        srlab.load_model("hf://someone/other/model.safetensors")
    msg = str(info.value)
    where = cache / "hub" / "someone" / "other" / "main" / "model.safetensors"
    assert f"{url}/someone/other/resolve/main/model.safetensors" in msg and str(where) in msg
    assert "\n" not in msg and _files_under(cache) == [] and handler.requests == []


@pytest.mark.parametrize(
    "ref",
    [
        "hf://owner/repo",
        "hf://owner/repo/../../etc/passwd",
        "hf://../repo/file.pth",
        "hf://owner/repo@../../x/file.pth",
        "hf://owner/repo//file.pth",
        "hf://owner/re po/file.pth",
    ],
)
def test_hf_references_that_could_leave_the_cache_are_refused(ref, cache):
    with pytest.raises(ConfigError):
        parse_hf(ref)
    with pytest.raises(ConfigError):
        srlab.load_model(ref)
    assert _files_under(cache) == []


class _Endless(http.server.BaseHTTPRequestHandler):
    """A body with no Content-Length that never ends (until the client hangs up)."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_an_endless_body_is_capped_and_leaves_nothing(cache, monkeypatch):
    import srlab.weights.download as dl

    monkeypatch.setattr(dl, "MAX_BYTES", 3 << 20)  # srlab's cap, read when the download starts
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(WeightsError) as info:
            srlab.load_model(f"http://127.0.0.1:{srv.server_port}/w.pth#sha256={'2' * 64}")
    finally:
        srv.shutdown()
    msg = str(info.value)
    assert "longer than srlab's cap of 3,145,728 bytes" in msg and "nothing was saved" in msg
    assert "\n" not in msg and _files_under(cache) == []


def test_file_dev_zero_is_refused_in_one_line_and_leaves_nothing(cache, tmp_path, capsys):
    from PIL import Image

    from srlab.cli import main

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    rc = main(
        [
            "upscale",
            str(tmp_path / "a.png"),
            "-o",
            str(tmp_path / "o"),
            "-m",
            f"file:///dev/zero#sha256={'0' * 64}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "file:///dev/zero is longer than" in err[0], err
    assert _files_under(cache) == [] and not (tmp_path / "o").exists()
