"""`srlab serve`'s API against the real app (Starlette's TestClient, real worker processes, real models):
results equal `srlab upscale`'s files bit for bit, comparisons score like an independent PSNR, progress
events, deletion, animations, and one-line errors for bad requests."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from srlab.cli import main  # noqa: E402
from srlab.serve.app import create_app  # noqa: E402
from srlab.serve.config import ServeConfig  # noqa: E402

RNG = np.random.default_rng(22)


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("serve"), workers=1)
    with TestClient(create_app(cfg)) as c:
        yield c


@pytest.fixture()
def idle(tmp_path):
    """An app whose jobs stay queued (no workers): for the request checks alone."""
    cfg = ServeConfig(data_dir=tmp_path / "idle", max_queued_per_client=2, max_upload_bytes=64 * 1024)
    with TestClient(create_app(cfg, start_workers=False)) as c:
        yield c


def wait_done(c, job_id: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {job}")


def submit(c, data: bytes, name: str = "photo.png", **fields) -> str:
    r = c.post("/api/jobs", files={"file": (name, data, "application/octet-stream")}, data=fields)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_models_list(client):
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert models["srcnn-x2"] | {"description": ""} == {
        "name": "srcnn-x2", "kind": "trained by srlab", "family": "srcnn", "scale": 2, "speed": "fast",
        "description": "", "available": True,
    }  # fmt: skip
    assert models["bicubic-x4"]["scale"] == 4 and models["bicubic-x4"]["speed"] == "instant"
    assert "vgg19" not in models  # a loss network, not an upscaler


@pytest.mark.parametrize(("model", "ext"), [("srcnn-x2", "png"), ("bicubic-x2", "jpg")])
def test_result_equals_cli_bit_for_bit(client, tmp_path, model, ext):
    photo = tmp_path / f"photo.{ext}"
    PILImage.fromarray(RNG.integers(0, 256, (37, 52, 3), dtype=np.uint8)).save(photo)
    job = wait_done(client, submit(client, photo.read_bytes(), photo.name, model=model))
    assert job["status"] == "done", job
    r = client.get(f"/api/jobs/{job['id']}/result")
    assert r.status_code == 200
    assert r.headers["content-type"] == ("image/png" if ext == "png" else "image/jpeg")
    out = tmp_path / "cli"
    assert main(["upscale", str(photo), "-o", str(out), "-m", model, "-q"]) == 0
    cli_file = out / f"photo_x2.{ext}"
    assert r.content == cli_file.read_bytes()
    assert PILImage.open(io.BytesIO(r.content)).size == (104, 74)
    d = client.get(f"/api/jobs/{job['id']}/result?download=1")
    assert d.headers["content-disposition"] == f'attachment; filename="photo_x2.{ext}"'


def test_events_then_delete(client):
    job_id = submit(client, _png(RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8)), model="srcnn-x2")
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    assert events[-1][0] == "done" and events[-1][1]["progress"] == 1
    progress = [e["progress"] for k, e in events if k == "running"] + [1]
    assert progress == sorted(progress)
    folder = Path(client.app.state.service.store.folder(job_id))
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["result"]["file"] == "input_x2.png"  # the name `srlab upscale input.png` gives
    assert (folder / "input_x2.png").is_file()
    assert client.delete(f"/api/jobs/{job_id}").status_code == 200
    assert not folder.exists()
    gone = client.get(f"/api/jobs/{job_id}")
    assert gone.status_code == 404 and list(gone.json()) == ["error"]


def test_animation_keeps_frames(client):
    frames = [PILImage.fromarray(RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    job = wait_done(client, submit(client, buf.getvalue(), "anim.gif", model="bicubic-x2"))
    assert job["status"] == "done", job
    assert job["params"]["media"] == "animation" and job["result"]["frames"] == 3
    r = client.get(f"/api/jobs/{job['id']}/result")
    assert r.headers["content-type"] == "image/gif"
    im = PILImage.open(io.BytesIO(r.content))
    assert im.n_frames == 3 and im.size == (20, 24)


def _y(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64) / 255.0
    return 16 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]


def test_compare_scores_against_ground_truth(client, data_root):
    from srlab.imaging.io import from_tensor, to_tensor
    from srlab.imaging.resize import imresize

    hr = np.asarray(PILImage.open(data_root / "Set5" / "HR" / "bird.png").convert("RGB"))
    hr = hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2]
    lr = from_tensor(imresize(to_tensor(hr), 0.5).clamp(0, 1))
    r = client.post(
        "/api/compare",
        files={"file": ("lr.png", _png(lr), "image/png"), "truth": ("hr.png", _png(hr), "image/png")},
        data={"models": "bicubic-x2,srcnn-x2", "protocol": "standard"},
    )
    assert r.status_code == 202, r.text
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done", job
    res = client.get(f"/api/jobs/{job['id']}/result").json()
    assert res["protocol"] == "standard" and res["metric_channel"] == "y"
    psnr = {}
    for row in res["outputs"]:
        out = np.asarray(
            PILImage.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/files/{row['file']}").content))
        )
        assert out.shape == hr.shape
        mse = np.mean((_y(out)[2:-2, 2:-2] - _y(hr)[2:-2, 2:-2]) ** 2)  # independent: numpy, Y, border 2
        assert row["psnr"] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-6)
        assert 0 < row["ssim"] <= 1
        psnr[row["model"]] = row["psnr"]
    assert psnr["srcnn-x2"] > psnr["bicubic-x2"] + 0.5  # the trained model beats its own baseline


def test_infinite_psnr_is_sent_by_the_json_rule(client):
    lr = _png(RNG.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    r = client.post("/api/compare", files={"file": ("lr.png", lr)}, data={"models": "bicubic-x2"})
    first = wait_done(client, r.json()["id"])
    sr = client.get(f"/api/jobs/{first['id']}/files/out-0.png").content
    files = {"file": ("lr.png", lr), "truth": ("hr.png", sr)}  # the truth is the output itself
    r = client.post("/api/compare", files=files, data={"models": "bicubic-x2"})
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done", job
    for url in (f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/result"):
        text = client.get(url).text
        doc = json.loads(text, parse_constant=lambda t: pytest.fail(f"bare {t} token"))
        row = (doc["result"] if "result" in doc else doc)["outputs"][0]
        assert row["psnr"] == "Infinity" and row["ssim"] == pytest.approx(1.0)


def test_a_file_named_nan_keeps_its_name(client):
    png = _png(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    job = wait_done(client, submit(client, png, "NaN.png", model="bicubic-x2"))
    assert job["status"] == "done" and job["params"]["name"] == "NaN", job
    d = client.get(f"/api/jobs/{job['id']}/result?download=1")
    assert d.headers["content-disposition"] == 'attachment; filename="NaN_x2.png"'


@pytest.mark.parametrize(
    ("files", "fields", "status", "says"),
    [
        ({"file": ("a.png", b"just text, no pixels\n")}, {"model": "bicubic-x2"}, 400, "not an image"),
        ({"file": ("a.png", b"")}, {"model": "bicubic-x2"}, 400, "empty"),
        ({"image": ("a.png", None)}, {"model": "bicubic-x2"}, 400, "no 'file'"),
        ({"file": ("a.png", None)}, {}, 400, "model: missing"),
        ({"file": ("a.png", None)}, {"model": "no-such-model"}, 400, "unknown model"),
        ({"file": ("a.png", None)}, {"model": "bicubic-x2", "tile": "-3"}, 400, "tile"),
        ({"file": ("a.png", None)}, {"model": "bicubic-x2", "scale": "nan"}, 400, "scale"),
        ({"file": ("a.png", None)}, {"model": "bicubic-x2", "precision": "fp8"}, 400, "precision"),
    ],
)
def test_bad_requests_get_one_line(idle, files, fields, status, says):
    good = _png(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    files = {k: (n, good if d is None else d) for k, (n, d) in files.items()}
    r = idle.post("/api/jobs", files=files or None, data=fields)
    assert r.status_code == status
    body = r.json()
    assert list(body) == ["error"] and says in body["error"] and "\n" not in body["error"]
    assert "Traceback" not in r.text


def test_other_errors_are_json(idle):
    good = _png(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert idle.post("/api/jobs", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert idle.get("/api/jobs/not-an-id").json()["error"].startswith("no job")
    assert idle.get("/api/nothing-here").status_code == 404
    assert idle.put("/api/models").status_code == 405
    job_id = submit(idle, good, model="bicubic-x2")
    r = idle.get(f"/api/jobs/{job_id}/result")
    assert r.status_code == 409 and "queued" in r.json()["error"]
    assert idle.get(f"/api/jobs/{job_id}/files/..%2Fjobs.sqlite3").status_code == 404
    assert idle.get("/openapi.json").json()["paths"]["/api/jobs"]["post"]["requestBody"]
    assert "openapi.json" in idle.get("/docs").text


def test_queue_cap_per_client(idle):
    good = _png(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    submit(idle, good, model="bicubic-x2")
    submit(idle, good, model="bicubic-x2")
    r = idle.post("/api/jobs", files={"file": ("a.png", good)}, data={"model": "bicubic-x2"})
    assert r.status_code == 429 and "queued" in r.json()["error"]


@pytest.mark.slow  # a worker restart (a fresh interpreter importing torch) and a job of seconds, twice
def test_killed_worker_is_replaced_and_its_job_rerun(client):
    import os
    import signal

    (pid,) = client.get("/api/health").json()["worker_pids"]
    big = _png(RNG.integers(0, 256, (384, 384, 3), dtype=np.uint8))
    job_id = submit(client, big, model="srcnn-x2", tile="16")  # hundreds of tiles: seconds of work
    deadline = time.monotonic() + 120
    while client.get(f"/api/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    job = wait_done(client, job_id, timeout=300)
    assert job["status"] == "done" and job["attempts"] == 2, job
    assert "worker process died" in job["note"]
    assert client.get("/api/health").json()["worker_pids"] != [pid]
    assert PILImage.open(io.BytesIO(client.get(f"/api/jobs/{job_id}/result").content)).size == (768, 768)


def _frames(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_video_goes_the_cli_way(client, tmp_path):
    av = pytest.importorskip("av")
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        for i in range(4):
            frame = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8) // 4 + i * 40
            for p in s.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    job = wait_done(client, submit(client, clip.read_bytes(), "clip.mp4", model="bicubic-x2"))
    assert job["status"] == "done", job
    assert job["params"]["media"] == "video" and job["params"]["input"] == "input.mp4"
    r = client.get(f"/api/jobs/{job['id']}/result")
    assert r.headers["content-type"] == "video/mp4"
    served = tmp_path / "served.mp4"
    served.write_bytes(r.content)
    assert main(["upscale", str(clip), "-o", str(tmp_path / "cli"), "-m", "bicubic-x2", "-q"]) == 0
    ours, cli = _frames(served), _frames(tmp_path / "cli" / "clip_x2.mp4")
    assert len(ours) == len(cli) == 4 and ours[0].shape == (48, 64, 3)
    assert all(np.array_equal(a, b) for a, b in zip(ours, cli))
