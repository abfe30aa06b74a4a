"""Perceptual metrics: srlab's LPIPS (alex, vgg) and DISTS equal the reference packages' numbers on real image
pairs with identical weights; NIQE equals the published MATLAB value; weights download hash-checked from a
local server, and offline it is one line.

Weights: the published LPIPS linear heads and DISTS alpha/beta are the files the reference packages ship
(installed with ``pip install --no-deps lpips DISTS_pytorch``, as .ci/run does); ImageNet backbones cannot
be downloaded here, so one fixed random backbone is copied into both implementations.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.cli import main
from srlab.errors import ConfigError, WeightsError
from srlab.eval import perceptual as mp
from srlab.eval.perceptual.assets import ASSETS, require
from srlab.eval.perceptual.dists import build_dists
from srlab.eval.perceptual.lpips import build_lpips
from srlab.eval.perceptual.niqe import NIQE
from srlab.imaging.resize import imresize, quantize

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden" / "gt"
NIQE_NPZ = HERE / "data" / "perceptual" / "niqe_pris_params.npz"
NIQE_MATLAB_BABOON = 5.72957338  # BasicSR calculate_niqe docstring: MATLAB R2021a, tests/data/baboon.png


def _needs(pkg: str) -> None:
    if importlib.util.find_spec(pkg) is None:  # not importorskip: importing it needs torchvision
        pytest.skip(f"reference package {pkg} not installed (pip install --no-deps {pkg})")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty srlab cache and torch hub: weights come only from where each test says."""
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    mp.clear_cache()
    yield tmp_path
    mp.clear_cache()


@pytest.fixture
def stub_tv(monkeypatch):
    spec = importlib.util.spec_from_file_location("tv_models_stub", HERE / "stubs" / "tv_models_stub.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.install(monkeypatch)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).to(torch.float64)


@functools.cache
def _pair(name: str, scale: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A real pair: HR (modcropped) and its bicubic x``scale`` reconstruction, both rounded, on 0-255."""
    hr = np.asarray(Image.open(GOLDEN / f"{name}.png").convert("RGB"))
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = _t(hr[:h, :w].copy())
    sr = quantize(imresize(quantize(imresize(hr, 1 / scale)), scale))
    return sr, hr


def _backbone_file(slices, path: Path) -> Path:
    """Save a reference network's backbone (modules named by torchvision index) as a torchvision file."""
    sd = {}
    for sl in slices:
        for name, t in sl.named_parameters():
            sd[f"features.{name}"] = t.detach().clone()
    torch.save(sd, path)
    return path


@pytest.mark.parametrize("net,images", [("alex", ("baboon", "comic")), ("vgg", ("comic",))])
def test_lpips_equals_the_reference_package(env, stub_tv, net, images):
    _needs("lpips")
    import lpips

    torch.manual_seed(1)
    ref = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()  # published heads, random backbone
    slices = [getattr(ref.net, f"slice{i}") for i in range(1, 6)]
    ours = build_lpips(net, backbone=_backbone_file(slices, env / f"{net}.pth"))  # heads: the package's copy
    assert require(f"lpips-{net}", metric="t").parent.name == "v0.1"  # found in the installed package
    for name in images:
        sr, hr = _pair(name)
        if net == "vgg":  # VGG16 is ~20x AlexNet's work: a 192x128 corner of the pair keeps the test quick
            sr, hr = sr[..., :128, :192], hr[..., :128, :192]
        with torch.no_grad():
            want = ref((sr / 255).float() * 2 - 1, (hr / 255).float() * 2 - 1).flatten().double()
        got = mp.score("lpips" if net == "alex" else "lpips_vgg", sr, hr, model=ours)
        assert float(want) > 1e-3
        print(f"LPIPS-{net} {name}: srlab {float(got):.9f} reference {float(want):.9f}")
        assert float(got) == pytest.approx(float(want), abs=1e-4)
        assert float(mp.score("lpips", hr, hr, model=ours)) == pytest.approx(0.0, abs=1e-6)


def test_dists_equals_the_reference_package(env, stub_tv):
    _needs("DISTS_pytorch")
    from DISTS_pytorch import DISTS_pt

    torch.manual_seed(2)
    ref = DISTS_pt.DISTS(load_weights=False).eval()
    spec = importlib.util.find_spec("DISTS_pytorch")
    w = torch.load(Path(spec.submodule_search_locations[0]) / "weights.pt", weights_only=True)
    ref.alpha.data, ref.beta.data = w["alpha"], w["beta"]
    slices = [getattr(ref, f"stage{i}") for i in range(1, 6)]
    ours = build_dists(backbone=_backbone_file(slices, env / "vgg16.pth"))  # alpha/beta: the package's copy
    sr, hr = _pair("comic")
    sr, hr = sr[..., :128, :192], hr[..., :128, :192]  # a corner of the pair: VGG16 is slow on 2 cores
    with torch.no_grad():
        want = ref((sr / 255).float(), (hr / 255).float()).double()
    got = mp.score("dists", sr, hr, model=ours)
    print(f"DISTS comic: srlab {float(got):.9f} reference {float(want):.9f}")
    assert 1e-3 < float(want) < 1
    assert float(got) == pytest.approx(float(want), abs=1e-4)


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Files.files
    srv.shutdown()
    srv.server_close()


def _serve_niqe(monkeypatch, url: str) -> None:
    monkeypatch.setitem(ASSETS, "niqe", dataclasses.replace(ASSETS["niqe"], url=url, package=None))


def test_niqe_downloads_its_model_and_matches_matlab(env, server, monkeypatch):
    base, files = server
    files["/niqe.npz"] = NIQE_NPZ.read_bytes()
    _serve_niqe(monkeypatch, f"{base}/niqe.npz")
    baboon = _t(np.asarray(Image.open(GOLDEN / "baboon.png").convert("RGB")).copy())
    got = float(mp.score("niqe", baboon))  # downloads into the (empty) cache first
    assert got == pytest.approx(NIQE_MATLAB_BABOON, abs=1e-5)
    cached = env / "cache" / "weights" / ASSETS["niqe"].filename
    assert cached.read_bytes() == NIQE_NPZ.read_bytes()
    # a corrupted copy is refused with a hash error and nothing is left behind
    mp.clear_cache()
    cached.unlink()
    files["/niqe.npz"] = NIQE_NPZ.read_bytes()[:-1] + b"x"
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        mp.load("niqe")
    assert not cached.exists() and not list(cached.parent.glob(".*part"))


def test_niqe_needs_two_blocks_and_its_parameters_are_checked(tmp_path):
    model = NIQE.load(NIQE_NPZ)
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        model(np.zeros((100, 100)))
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu_pris_param=np.zeros(3), cov_pris_param=np.eye(3), gaussian_window=np.ones((7, 7)))
    with pytest.raises(WeightsError, match=r"mu \(36,\)"):
        NIQE.load(bad)


def test_offline_is_one_line_naming_the_file_and_where_to_put_it(env, monkeypatch, capsys):
    closed = "http://127.0.0.1:9/alexnet-owt-7be5be79.pth"  # nothing listens on port 9
    monkeypatch.setitem(ASSETS, "alexnet", dataclasses.replace(ASSETS["alexnet"], url=closed))
    with pytest.raises(WeightsError) as exc:
        mp.load("lpips")
    msg = str(exc.value)
    dest = env / "cache" / "weights" / "alexnet-owt-7be5be79.pth"
    assert "LPIPS needs alexnet-owt-7be5be79.pth" in msg and closed in msg and str(dest) in msg
    d = env / "imgs"
    d.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "x.png")
    rc = main(["eval", "--set-path", f"L={d}", "--datasets", "L", "--scale", "2", "--metrics", "psnr,lpips"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(dest) in err[0]
    with pytest.raises(ConfigError, match="unknown metric 'musiq'"):
        mp.parse_metrics(["psnr", "musiq"])
    assert mp.parse_metrics(["PSNR", "ssim", "LPIPS-alex", "niqe", "lpips"]) == ("lpips", "niqe")


def test_eval_gains_perceptual_columns(env, stub_tv, tmp_path):
    """The columns, the tables and the NaN note, with the published heads and a random backbone."""
    _needs("lpips")
    import lpips

    from srlab.eval.loop import evaluate
    from srlab.eval.metrics import lpips_distance
    from srlab.eval.results import markdown_table, write_results

    torch.manual_seed(3)
    ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    lp = build_lpips(
        "alex",
        backbone=_backbone_file([getattr(ref.net, f"slice{i}") for i in range(1, 6)], tmp_path / "a.pth"),
    )
    mp._MODELS[("lpips", "cpu")] = lp
    mp._MODELS[("niqe", "cpu")] = NIQE.load(NIQE_NPZ)
    d = tmp_path / "L"
    d.mkdir()
    Image.open(GOLDEN / "comic.png").save(d / "comic.png")
    Image.open(GOLDEN / "comic.png").crop((0, 0, 64, 64)).save(d / "small.png")
    notes: list[str] = []
    res = evaluate(
        ["bicubic", "bilinear"],
        ["L"],
        [2],
        set_paths={"L": d},
        device="cpu",
        metrics=["lpips", "niqe"],
        log=notes.append,
    )
    rows = {(r["model"], r["image"]): r for r in res.rows}
    assert all(0 < r["lpips"] < 1 for r in res.rows)
    assert rows[("bicubic", "comic")]["lpips"] < rows[("bilinear", "comic")]["lpips"]
    assert rows[("bicubic", "comic")]["niqe"] > 0 and np.isnan(rows[("bicubic", "small")]["niqe"])
    assert any("niqe not computed" in n and "small.png" in n for n in notes)
    assert set(res.header["metrics"]) == {"lpips", "niqe"}
    sr, hr = _pair("comic", 2)
    assert lpips_distance(sr[0], hr[0]) == pytest.approx(float(mp.score("lpips", sr, hr)), abs=1e-9)
    md = markdown_table([r for r in res.rows if r["image"] == "comic"], metrics=("lpips", "niqe"))
    assert "LPIPS / NIQE (lower is better)" in md and "**" in md
    paths = write_results(res.rows, res.header, tmp_path / "out")
    text = paths["md"].read_text()
    assert "LPIPS / NIQE" in text and "- niqe: NIQE" in text
    assert "lpips" in paths["csv"].read_text().splitlines()[0]
