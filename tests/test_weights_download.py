"""Downloads against a local HTTP server on 127.0.0.1: good hash, bad hash, interrupted, offline; the zoo."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading

import pytest
import torch

import srlab
from srlab.cli import main
from srlab.errors import WeightsError
from srlab.weights import zoo
from srlab.weights.download import cache_dir, download

PAYLOAD = bytes(range(256)) * 1500  # 384 000 bytes: several read chunks are not needed, one is enough
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        if self.path == "/cut":  # announces the full length, sends a tenth, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 10])
            self.wfile.flush()
            self.close_connection = True
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def server():
    _Handler.files = {"/fixture.bin": PAYLOAD}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Handler.files
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    return cache_dir()


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_good_hash(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w" / "fixture.bin"
    assert download(f"{url}/fixture.bin", dest, sha256=SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["fixture.bin"]
    # a hash prefix (torchvision style) is accepted too
    download(f"{url}/fixture.bin", tmp_path / "p.bin", sha256=SHA[:8], progress=False)
    assert (tmp_path / "p.bin").read_bytes() == PAYLOAD


def test_bad_hash_leaves_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w" / "fixture.bin"
    with pytest.raises(WeightsError) as info:
        download(f"{url}/fixture.bin", dest, sha256="0" * 64, progress=False)
    msg = str(info.value)
    assert "sha256 mismatch" in msg and SHA in msg and "deleted" in msg and "\n" not in msg
    assert _leftovers(dest.parent) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w" / "fixture.bin"
    with pytest.raises(WeightsError, match="interrupted"):
        download(f"{url}/cut", dest, progress=False)
    assert _leftovers(dest.parent) == []
    # an existing good copy is not damaged by a failed re-download
    dest.write_bytes(b"old copy")
    with pytest.raises(WeightsError, match="interrupted"):
        download(f"{url}/cut", dest, progress=False)
    assert dest.read_bytes() == b"old copy" and _leftovers(dest.parent) == ["fixture.bin"]


def test_http_error_and_offline_say_what_to_do(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w" / "x.bin"
    with pytest.raises(WeightsError, match="HTTP 404"):
        download(f"{url}/nothing-here", dest, progress=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/model.pth"
    sock.close()  # nobody listens there any more
    with pytest.raises(WeightsError) as info:
        download(dead, dest, progress=False)
    msg = str(info.value)
    assert dead in msg and f"save it as {dest}" in msg and "\n" not in msg
    assert _leftovers(dest.parent) == []


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "copy.bin"
    download(src.as_uri(), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        download(src.as_uri(), tmp_path / "out" / "bad.bin", sha256="f" * 8, progress=False)
    assert _leftovers(dest.parent) == ["copy.bin"]


# ------------------------------------------------------------------------------ zoo
@pytest.fixture
def tiny_entry(server, monkeypatch):
    """A zoo entry whose file is a tiny BasicSR-layout RRDBNet served by the local server."""
    import io

    model, _ = srlab.build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    buf = io.BytesIO()
    torch.save({"params_ema": model.state_dict()}, buf)
    body = buf.getvalue()
    url, files = server
    files["/tiny.pth"] = body
    entry = zoo.ZooEntry(
        name="tiny",
        filename="tiny_x2.pth",
        description="test entry",
        arch="rrdbnet",
        hparams=dict(scale=2, num_block=1, num_feat=8, num_grow_ch=4),
        license="MIT",
        homepage="http://127.0.0.1",
        url=f"{url}/tiny.pth",
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
    )
    monkeypatch.setitem(zoo.ZOO, "tiny", entry)
    return entry, model


def test_zoo_fetch_and_load(cache, tiny_entry, capsys):
    entry, model = tiny_entry
    with pytest.raises(WeightsError) as info:  # not fetched yet: says how to get it, touches no network
        srlab.load_model("tiny")
    assert "srlab weights fetch tiny" in str(info.value) and str(cache / "tiny_x2.pth") in str(info.value)
    assert main(["weights", "fetch", "tiny"]) == 0
    assert str(cache / "tiny_x2.pth") in capsys.readouterr().out
    loaded, desc = srlab.load_model("tiny")
    assert desc.name == "tiny" and desc.scale == 2
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    # a damaged cached copy is caught before use
    path = cache / "tiny_x2.pth"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match tiny"):
        srlab.load_model("tiny")
    # fetch --force replaces it with a verified copy
    assert main(["weights", "fetch", "tiny", "--force"]) == 0
    assert srlab.load_model("tiny")[1].scale == 2


def test_zoo_entry_with_the_wrong_file(cache, tiny_entry, monkeypatch):
    entry, _ = tiny_entry
    other, _ = srlab.build_model("rrdbnet", scale=4, num_block=1, num_feat=8, num_grow_ch=4)
    cache.mkdir(parents=True)
    torch.save(other.state_dict(), cache / entry.filename)
    monkeypatch.setitem(zoo.ZOO, "tiny", zoo.ZooEntry(**{**entry.__dict__, "sha256": None, "size": None}))
    with pytest.raises(WeightsError, match="is not tiny"):
        srlab.load_model("tiny")


def test_real_zoo_names_offline(cache):
    with pytest.raises(WeightsError) as info:
        srlab.load_model("RealESRGAN_x4plus")
    msg = str(info.value)
    assert "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth" in msg
    assert str(cache / "RealESRGAN_x4plus.pth") in msg
    with pytest.raises(WeightsError) as info:  # Google Drive only: no direct URL
        zoo.fetch("RRDB_ESRGAN_x4")
    msg = str(info.value)
    assert (
        "no direct download URL" in msg
        and "drive.google.com" in msg
        and str(cache / "RRDB_ESRGAN_x4.pth") in msg
    )


def test_zoo_entries_are_complete():
    for e in zoo.list_entries():
        assert e.license and e.homepage and e.arch and e.filename
        assert e.url or e.manual_url
        if e.sha256:
            assert all(c in "0123456789abcdef" for c in e.sha256)
            assert len(e.sha256) == 64 or e.sha256_is_prefix
        for m in e.metrics:
            assert m["source"] and isinstance(m["value"], float)
    assert zoo.ZOO["vgg19"].sha256 == "dcbb9e9d" and zoo.ZOO["vgg19"].filename == "vgg19-dcbb9e9d.pth"


# ------------------------------------------------------------------------------ VGG19
def test_load_vgg19_from_a_torchvision_style_file(tmp_path, cache):
    from srlab.models.vgg import VGG19

    ref = VGG19()
    sd = {k: v for k, v in ref.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's head: present in the file, ignored
    sd["classifier.0.bias"] = torch.zeros(2)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(sd, path)
    model = zoo.load_vgg19(path)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    with pytest.raises(WeightsError) as info:
        zoo.load_vgg19()  # empty cache
    msg = str(info.value)
    assert (
        "srlab weights fetch vgg19" in msg and "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg
    )
    assert str(cache / "vgg19-dcbb9e9d.pth") in msg


# ------------------------------------------------------------------------------ the study's pretrained row
def test_basicsr_official_esrgan_entry(cache):
    e = zoo.ZOO["esrgan-x4-df2kost"]
    assert e.filename == "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth" and e.sha256 == "ff704c30"
    assert e.url == (
        "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
    )
    assert e.arch == "rrdbnet" and e.hparams["num_block"] == 23 and e.hparams["scale"] == 4
    with pytest.raises(WeightsError) as info:  # not downloaded: the URL and where to put it, one line
        srlab.load_model("esrgan-x4-df2kost")
    msg = str(info.value)
    assert e.url in msg and str(cache / e.filename) in msg and "\n" not in msg
    # the file-name digits are checked as a sha256 prefix
    cache.mkdir(parents=True)
    (cache / e.filename).write_bytes(b"not the official file")
    with pytest.raises(WeightsError, match="does not match esrgan-x4-df2kost"):
        srlab.load_model("esrgan-x4-df2kost")


def _tiny_official(monkeypatch, cache, **changes):
    """A 1-block x4 RRDBNet in BasicSR's layout (wrapped in ``params``) as the cached official file."""
    net, _ = srlab.build_model("rrdbnet", scale=4, num_block=1, num_feat=8, num_grow_ch=4)
    e = zoo.ZOO["esrgan-x4-df2kost"]
    hp = dict(e.hparams, num_block=1, num_feat=8, num_grow_ch=4)
    monkeypatch.setitem(
        zoo.ZOO, e.name, zoo.ZooEntry(**{**e.__dict__, "sha256": None, "hparams": hp, **changes})
    )
    return net.eval(), e


def _study_ctx(tmp_path, **ref):
    from pathlib import Path
    from types import SimpleNamespace

    reference = SimpleNamespace(
        **{
            "weights": "esrgan-x4-df2kost",
            "fallback": [],
            "input": "float",
            "output": "float",
            "resize": "none",
            **ref,
        }
    )
    spec = SimpleNamespace(
        models={"pretrained": SimpleNamespace(title="Pretrained ESRGAN", pretrained=reference)},
        resolve_path=Path,
    )
    return SimpleNamespace(spec=spec, scale=2, out=tmp_path, say=lambda m: None)


def _prepare(setup, **kw) -> dict:
    from srlab.study.references import prepare_pretrained

    return prepare_pretrained(setup, "pretrained", setup.spec.models["pretrained"].pretrained, **kw)


def _png8(t):
    return torch.floor(t.clamp(0, 1) * 255 + 0.5) / 255


def test_pretrained_row_the_studys_way_and_the_matlab_way(cache, monkeypatch, tmp_path):
    import torch.nn.functional as F

    from srlab.imaging.resize import imresize

    net, e = _tiny_official(monkeypatch, cache)
    cache.mkdir(parents=True)
    torch.save({"params": net.state_dict()}, cache / e.filename)
    x = torch.rand(1, 3, 10, 12)
    # the study: LR saved as an 8-bit PNG, x4 output saved as 8 bits, its bilinear /2 (saved as 8 bits)
    got = _prepare(
        _study_ctx(tmp_path / "study", input="png8", output="png8", resize="study"), download=False
    )
    info = got["reference"]
    assert info["file"] == e.filename and info["official"] and list(got["models"]) == [info["label"]]
    assert (
        "8 bits" in info["how"]
        and "bilinear" in info["how"]
        and got["models"][info["label"]]["weights"] == e.filename
    )
    model, desc = srlab.load_model(info["path"])  # a plain srlab checkpoint: srlab eval runs it as is
    assert desc.scale == 2
    with torch.no_grad():
        want = _png8(F.interpolate(_png8(net(_png8(x))), size=(20, 24), mode="bilinear", align_corners=False))
        got = model(x)
    assert torch.equal(got, want) and torch.equal(got, _png8(got))
    # the quick study's way: the float output, MATLAB imresize
    info = _prepare(_study_ctx(tmp_path / "quick", resize="matlab"), download=False)["reference"]
    model, _ = srlab.load_model(info["path"])
    with torch.no_grad():
        assert torch.allclose(model(x), imresize(net(x), size=(20, 24)), atol=1e-6)
    assert info["label"] == "pretrained_esrgan-x4-df2kost_x4-imresize-x2"
    # a x4 model cannot make x2 rows without a resize
    with pytest.raises(srlab.errors.ConfigError, match="resize"):
        _prepare(_study_ctx(tmp_path / "none"), download=False)


def test_pretrained_row_offline_is_listed_and_the_run_goes_on(cache, monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: the download fails as it does offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
    _, e = _tiny_official(monkeypatch, cache, url=url)
    got = _prepare(_study_ctx(tmp_path, input="png8", output="png8", resize="study"))
    assert got["models"] == {} and got["reference"] is None
    (item,) = got["missing_inputs"]
    line = item["where"]["esrgan-x4-df2kost"]
    assert item["kind"] == "weights" and not item["blocking"]
    assert url in line and str(cache / e.filename) in line and "\n" not in line
    assert any("No 'Pretrained ESRGAN' row" in n for n in got["notes"])
    assert not list(cache.glob("*.part")) and not (cache / e.filename).exists()
