"""Report rendering: figures (PNG written and re-read), Markdown and self-contained HTML, the Chromium check."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _checker(n: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    img = np.zeros((n, n, 3), np.uint8)
    img[..., 0] = ((yy // 8 + xx // 8) % 2) * 255
    img[..., 1] = xx * 255 // n
    img[..., 2] = 128
    return img


def test_choose_inset_finds_the_detailed_region():
    from srlab.report.figures import choose_inset

    img = np.full((96, 128, 3), 120, np.uint8)
    img[60:84, 90:114] = _checker(24)  # the only texture in a flat image
    top, left, h, w = choose_inset(img, 24)
    assert (h, w) == (24, 24)
    assert abs(top - 60) <= 6 and abs(left - 90) <= 6
    assert choose_inset(img) == choose_inset(img)  # deterministic
    t2, l2, h2, w2 = choose_inset(img)
    assert h2 == 96 // 4 and 0 <= t2 <= 96 - h2 and 0 <= l2 <= 128 - w2


def test_figures_write_pngs(tmp_path):
    from srlab.report.figures import Tile, save_distribution, save_panel, save_training_curves

    hr = _checker(64)
    lr = hr[::2, ::2]
    p = save_panel(
        tmp_path / "panel.png",
        [Tile("LR", lr, ""), Tile("bicubic", hr, "PSNR 30.00 / SSIM 0.9000"), Tile("HR", hr, "reference")],
        (8, 8, 16, 16),
        title="natural",
        footnote="a footnote",
    )
    a = _read_png(p)
    assert a.shape[1] > a.shape[0] * 0.8 and a.std() > 10
    # the red inset frame is drawn
    red = (a[..., 0] > 200) & (a[..., 1] < 80) & (a[..., 2] < 80)
    assert red.sum() > 100

    its = np.arange(0, 300)
    c = save_training_curves(
        tmp_path / "curves.png",
        {
            "srcnn": {"psnr l_pix": (its, 1.0 / (its + 1)), "val_psnr": ([0, 150, 299], [24.0, 26.0, 27.0])},
            "esrgan": {"loss_g": (its, np.full(300, np.nan))},  # all-NaN series are skipped, not fatal
        },
    )
    assert _read_png(c).std() > 5
    from srlab.report.figures import is_validation_series

    assert is_validation_series("val_psnr") and is_validation_series("gan val_psnr")
    assert not is_validation_series("psnr l_pix") and not is_validation_series("l_d")
    d = save_distribution(
        tmp_path / "dist.png", {"bicubic": [25.0, 26.0, 27.5], "srcnn": [26.0, 27.0], "x": []}
    )
    assert _read_png(d).shape[0] > 100


def test_markdown_and_html_render_the_same_content(tmp_path):
    from srlab.report.figures import save_distribution
    from srlab.report.html import Document, write_report

    save_distribution(tmp_path / "figs" / "d.png", {"a": [1.0, 2.0]})
    doc = Document("Report <title>")
    doc.heading("Tables").table(
        ["model", "natural | crop"], [["SRCNN", "29.10"], ["a|b", None]], caption="Table 1: PSNR"
    )
    doc.warning("perceptual loss used **random** VGG19 weights")
    doc.paragraph("run `srlab eval --models x` & see [docs](https://example.org)")
    doc.bullets(["one", "two <b>"]).code("srlab reproduce quick")
    doc.figure("figs/d.png", "Per-image PSNR")
    md_path, html_path = write_report(doc, tmp_path)

    md = md_path.read_text()
    assert md.startswith("# Report <title>")
    assert "| SRCNN | 29.10 |" in md and "a\\|b" in md and "natural \\| crop" in md
    assert "![Per-image PSNR](figs/d.png)" in md
    assert "> **Warning:** perceptual loss used **random** VGG19 weights" in md

    h = html_path.read_text()
    assert "<title>Report &lt;title&gt;</title>" in h
    assert "<strong>random</strong>" in h and "<code>srlab eval --models x</code>" in h
    assert '<a href="https://example.org">docs</a>' in h
    assert "two &lt;b&gt;" in h
    # self-contained: no reference to anything outside the file, figures embedded and decodable
    assert not re.search(r'(src|href)="(?!data:|#|https://example.org)', h)
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', h)
    assert len(uris) == 1
    assert base64.b64decode(uris[0]) == (tmp_path / "figs" / "d.png").read_bytes()


def test_missing_figure_is_a_clear_error(tmp_path):
    from srlab.errors import SrlabError
    from srlab.report.html import Document, write_report

    doc = Document("r").figure("nope.png", "missing")
    with pytest.raises(SrlabError, match="nope.png"):
        write_report(doc, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_check_report_html_flags_broken_images(tmp_path):
    from srlab.report.figures import save_distribution
    from srlab.report.html import Document, write_report

    save_distribution(tmp_path / "d.png", {"a": [1.0, 2.0, 3.0]})
    _, good = write_report(Document("ok").figure("d.png", "fig"), tmp_path)
    bad = tmp_path / "bad.html"
    bad.write_text(good.read_text().replace("base64,iVBOR", "base64,AAAA"))
    script = REPO / "scripts" / "check_report_html.py"
    r = subprocess.run(
        [sys.executable, str(script), str(good), "--screenshot", str(tmp_path / "s.png"), "--width", "800"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 images" in r.stdout and "OK" in r.stdout
    shot = _read_png(tmp_path / "s.png")
    assert shot.shape[1] == 800 and shot.std() > 5
    r = subprocess.run([sys.executable, str(script), str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "BROKEN" in r.stdout
