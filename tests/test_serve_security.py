"""`srlab serve`'s guards: a token off loopback (constant-time, header or cookie, never logged), upload
limits in bytes and pixels (413), model names that cannot be paths, no directory listing, CORS off unless
asked for."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from srlab.serve.app import create_app  # noqa: E402
from srlab.serve.config import ServeConfig, is_loopback  # noqa: E402
from srlab.serve.process import ServerProcess  # noqa: E402


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


SMALL = _png(np.zeros((8, 8, 3), np.uint8))


def _request(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_loopback_rule():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("lab.example")


def test_non_local_bind_needs_the_printed_token(tmp_path):
    with ServerProcess(
        tmp_path / "data", "--host", "0.0.0.0", "--workers", "1", env={"OMP_NUM_THREADS": "1"}
    ) as srv:
        assert "?token=" in srv.url
        token = srv.url.split("?token=", 1)[1]
        assert len(token) >= 24
        port = srv.base.rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        status, _, body = _request(f"{base}/api/models")
        assert status == 401 and "token" in json.loads(body)["error"]
        assert _request(f"{base}/api/models", {"Authorization": "Bearer " + "x" * len(token)})[0] == 401
        assert _request(f"{base}/", {"Cookie": "srlab_token=wrong"})[0] == 401
        assert _request(f"{base}/api/models", {"Authorization": f"Bearer {token}"})[0] == 200
        assert _request(f"{base}/api/models", {"X-Srlab-Token": token})[0] == 200
        status, headers, _ = _request(f"{base}/?token={token}")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        status, _, page = _request(f"{base}/", {"Cookie": cookie.split(";", 1)[0]})
        assert status == 200 and b"srlab playground" in page
    showing = [line for line in srv.lines if token in line]
    assert len(showing) == 1 and showing[0].startswith("srlab serve: http")  # the announcement, no log line
    assert any("GET /api/models" in line and "401" in line for line in srv.lines)  # requests are logged


@pytest.fixture()
def guarded(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "mine.safetensors").write_bytes(b"not really weights")
    (tmp_path / "secret.safetensors").write_bytes(b"outside the models folder")
    cfg = ServeConfig(
        data_dir=tmp_path / "data", max_upload_bytes=200_000, max_pixels=1_000_000, models_dir=models
    )
    with TestClient(create_app(cfg, start_workers=False)) as c:
        yield c


def test_oversize_upload_413(guarded):
    big = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)  # ~270 kB as PNG
    r = guarded.post("/api/jobs", files={"file": ("big.png", _png(big))}, data={"model": "bicubic-x2"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_pixel_bomb_413(guarded):
    bomb = _png(np.zeros((1200, 1200), np.uint8))  # 1.44 Mpx in a few kB: over the 1 Mpx limit
    assert len(bomb) < 200_000
    r = guarded.post("/api/jobs", files={"file": ("bomb.png", bomb)}, data={"model": "bicubic-x2"})
    assert r.status_code == 413 and "Mpx" in r.json()["error"]
    assert not any((guarded.app.state.service.config.jobs_dir).iterdir())  # nothing kept of it


@pytest.mark.parametrize(
    "model",
    [
        "../secret.safetensors",
        "/etc/passwd",
        "file:../secret.safetensors",
        "file:/etc/passwd",
        "srcnn-x2/../x",
        "",
    ],
)
def test_paths_are_not_model_names(guarded, model):
    r = guarded.post("/api/jobs", files={"file": ("a.png", SMALL)}, data={"model": model})
    assert 400 <= r.status_code < 500 and list(r.json()) == ["error"]


def test_models_dir_files_are_listed_by_name(guarded):
    names = [m["name"] for m in guarded.get("/api/models").json()["models"]]
    assert "file:mine.safetensors" in names and not any("secret" in n for n in names)
    r = guarded.post("/api/jobs", files={"file": ("a.png", SMALL)}, data={"model": "file:mine.safetensors"})
    assert r.status_code == 202  # accepted; loading it is the worker's business (a one-line failure)


def test_upload_name_is_never_a_path(guarded):
    r = guarded.post("/api/jobs", files={"file": ("../../evil.png", SMALL)}, data={"model": "bicubic-x2"})
    assert r.status_code == 202
    job = guarded.get(f"/api/jobs/{r.json()['id']}").json()
    assert job["params"]["input"] == "input.png" and job["params"]["name"] == "evil"


def test_no_listing_no_traversal_no_cors(guarded):
    for path in (
        "/static/",
        "/static",
        "/static/..%2Fapp.py",
        "/api/jobs/0123456789abcdef/files/..%2F..%2Fjobs.sqlite3",
    ):
        r = guarded.get(path)
        assert r.status_code == 404, path
    assert guarded.get("/static/app.js").status_code == 200
    r = guarded.get("/api/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_only_for_named_origins(tmp_path):
    cfg = ServeConfig(data_dir=tmp_path / "data", cors_origins=("http://lab.example",))
    with TestClient(create_app(cfg, start_workers=False)) as c:
        ok = c.get("/api/health", headers={"Origin": "http://lab.example"})
        assert ok.headers["access-control-allow-origin"] == "http://lab.example"
        assert (
            "access-control-allow-origin"
            not in c.get("/api/health", headers={"Origin": "http://x.example"}).headers
        )


def test_token_cookie_redirect_under_a_proxy_prefix(tmp_path):
    token = "t" * 20
    cfg = ServeConfig(data_dir=tmp_path / "data", token=token)
    with TestClient(create_app(cfg, start_workers=False), root_path="/srlab") as c:
        r = c.get(f"/?token={token}&view=1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/srlab/?view=1"
        c.cookies.clear()  # the client kept the cookie just set
        assert c.get("/api/health", headers={"Authorization": "Bearer " + "u" * 20}).status_code == 401
        assert c.get("/api/health", headers={"Cookie": f"srlab_token={token}"}).status_code == 200
        assert c.get("/openapi.json", headers={"X-Srlab-Token": token}).json()["servers"] == [
            {"url": "/srlab"}
        ]
