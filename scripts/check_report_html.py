#!/usr/bin/env python3
"""Render a report.html in headless Chromium, save a PNG screenshot, and fail on any broken image.

    python scripts/check_report_html.py REPORT.html [--screenshot OUT.png] [--width 1280] [--chromium PATH]

How: a copy of the page gets a small script that, once the page has loaded, records for every <img> whether
it decoded (``complete`` and ``naturalWidth > 0``) and the page height, and writes that as JSON into the
DOM; ``chromium --headless --dump-dom`` prints the DOM, from which the JSON is read back. A second run takes
a full-page ``--screenshot`` of the original page at that height. No DevTools protocol, no extra package.
Chromium: Debian's ``chromium`` package (``apt-get install -y chromium``), or --chromium / $CHROMIUM.

Exit status: 0 all images decoded; 1 a broken image (or no image where --min-images asks for some);
2 usage error or Chromium missing / failing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_PROBE = """
<script>
(function () {
  function report() {
    var imgs = Array.prototype.slice.call(document.images);
    var res = imgs.map(function (im, i) {
      return {index: i, ok: !!(im.complete && im.naturalWidth > 0), width: im.naturalWidth,
              height: im.naturalHeight, path: im.getAttribute('data-path') || '',
              alt: im.getAttribute('alt') || '', src: (im.getAttribute('src') || '').slice(0, 60)};
    });
    var out = {images: res, height: Math.max(document.body.scrollHeight,
               document.documentElement.scrollHeight), title: document.title};
    var pre = document.createElement('pre');
    pre.id = 'srlab-image-check';
    // markers built by concatenation so the script's own source never matches them
    pre.textContent = 'SRLAB-CHECK-' + 'BEGIN' + JSON.stringify(out) + 'SRLAB-CHECK-' + 'END';
    document.body.appendChild(pre);
  }
  if (document.readyState === 'complete') { report(); } else { window.addEventListener('load', report); }
})();
</script>
"""


def find_chromium(explicit: str | None) -> str | None:
    for cand in (explicit, os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and (shutil.which(cand) or Path(cand).is_file()):
            return shutil.which(cand) or cand
    return None


def _chromium(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    base = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--allow-file-access-from-files",
    ]
    with tempfile.TemporaryDirectory(prefix="srlab-chromium-") as profile:
        return subprocess.run(
            base + [f"--user-data-dir={profile}"] + args,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def probe(binary: str, html_path: Path, width: int = 1280, timeout: float = 120) -> dict:
    """Load a copy of the page with the probe script; return {'images': [...], 'height': px, 'title': str}."""
    text = html_path.read_text(encoding="utf-8", errors="replace")
    low = text.lower()
    i = low.rfind("</body>")
    probed = text[:i] + _PROBE + text[i:] if i >= 0 else text + _PROBE
    # The copy sits beside the original so relative references (if any) resolve the same way.
    fd, tmp = tempfile.mkstemp(prefix=".check-", suffix=".html", dir=html_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(probed)
        # same viewport width as the screenshot, so the measured page height is the screenshot's
        proc = _chromium(
            binary,
            [f"--window-size={width},1000", "--virtual-time-budget=10000", "--dump-dom", Path(tmp).as_uri()],
            timeout,
        )
    finally:
        os.unlink(tmp)
    m = re.search(r"SRLAB-CHECK-BEGIN(.*?)SRLAB-CHECK-END", proc.stdout, re.S)
    if not m:
        raise RuntimeError(
            f"chromium did not run the probe (exit {proc.returncode}): {proc.stderr.strip()[-400:] or 'no output'}"
        )
    import html as _html

    return json.loads(_html.unescape(m.group(1)))


def screenshot(
    binary: str, html_path: Path, out_png: Path, width: int, height: int, timeout: float = 120
) -> None:
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if out_png.exists():
        out_png.unlink()
    proc = _chromium(
        binary,
        [
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",
            f"--screenshot={out_png.resolve()}",
            html_path.resolve().as_uri(),
        ],
        timeout,
    )
    if not out_png.is_file() or out_png.stat().st_size == 0:
        raise RuntimeError(
            f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr.strip()[-400:]}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the report.html to check")
    ap.add_argument(
        "--screenshot", type=Path, default=None, help="PNG to write (default: <html>.png beside it)"
    )
    ap.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels (default 1280)")
    ap.add_argument(
        "--max-height", type=int, default=16000, help="cap on the screenshot height (default 16000)"
    )
    ap.add_argument("--min-images", type=int, default=1, help="fail if the page has fewer images (default 1)")
    ap.add_argument(
        "--chromium", default=None, help="Chromium binary (default: $CHROMIUM or chromium on PATH)"
    )
    args = ap.parse_args(argv)

    if not args.html.is_file():
        print(f"check_report_html: {args.html} does not exist", file=sys.stderr)
        return 2
    binary = find_chromium(args.chromium)
    if binary is None:
        print(
            "check_report_html: Chromium not found; install it (Debian: apt-get install -y chromium) "
            "or pass --chromium PATH",
            file=sys.stderr,
        )
        return 2
    try:
        result = probe(binary, args.html, args.width)
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"check_report_html: {exc}", file=sys.stderr)
        return 2
    images = result["images"]
    broken = [im for im in images if not im["ok"]]
    height = max(600, min(int(result.get("height") or 2000) + 20, args.max_height))
    shot = args.screenshot or args.html.with_suffix(".png")
    try:
        screenshot(binary, args.html, shot, args.width, height)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"check_report_html: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.html}: title {result.get('title')!r}, {len(images)} images, page height {result.get('height')} px"
    )
    for im in images:
        name = im["path"] or im["alt"] or im["src"]
        state = f"ok {im['width']}x{im['height']}" if im["ok"] else "BROKEN"
        print(f"  [{im['index']:2d}] {state:>12s}  {name}")
    print(f"screenshot: {shot} ({args.width}x{height})")
    if broken:
        print(f"FAIL: {len(broken)} of {len(images)} images did not decode", file=sys.stderr)
        return 1
    if len(images) < args.min_images:
        print(f"FAIL: {len(images)} images, expected at least {args.min_images}", file=sys.stderr)
        return 1
    print("OK: every image decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
