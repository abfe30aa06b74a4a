"""Hash-checked downloads into the weights cache.

:func:`download` streams a URL (``http(s)://`` or ``file://``) with a tqdm progress bar into a temporary
file beside the destination, checks its length and SHA-256 (the full hash, or a prefix such as the
8 hex digits in torchvision file names), then renames it into place. A bad hash, a connection that
closes early, or a Content-Length mismatch raises :class:`WeightsError` and leaves no file behind;
no connection at all raises one line saying which URL to fetch and exactly where to put the file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from srlab.atomic import open_staged
from srlab.errors import WeightsError
from srlab.runtime import cache_dir as runtime_cache_dir

__all__ = ["cache_dir", "download", "sha256_file"]

_CHUNK = 1 << 20
# No weight file srlab knows is near this; a larger body is a wrong URL or an endless stream.
MAX_BYTES = 8 << 30


def cache_dir() -> Path:
    """Where downloaded weights live: ``weights/`` under :func:`srlab.runtime.cache_root`."""
    return runtime_cache_dir("weights")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_hash(digest: str, sha256: str | None) -> bool:
    return sha256 is None or digest.startswith(sha256.lower())


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    max_bytes: int = MAX_BYTES,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying ``sha256`` (full hex digest or a prefix).

    Returns ``dest``. Raises :class:`WeightsError` on any failure, leaving neither ``dest`` (if it did not
    exist) nor a partial file. A body longer than ``size``, the announced length or ``max_bytes`` is cut off
    and refused (a ``file:///dev/zero`` URL must not fill the disk).
    """
    dest = Path(dest)
    manual = f"fetch {url} yourself (browser, curl -L -o) and save it as {dest}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"cannot create the weights folder {dest.parent} ({exc.strerror}); set SRLAB_CACHE"
        ) from None
    request = urllib.request.Request(url, headers={"User-Agent": "srlab-weights/1"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise WeightsError(
            f"download failed: {url} answered HTTP {exc.code} {exc.reason}; {manual}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsError(f"cannot download {url} ({reason}; offline?); {manual}") from None

    length = response.headers.get("Content-Length")
    expected = int(length) if length and length.isdigit() else size
    limit = min(x for x in (expected, size, max_bytes) if x is not None)
    try:
        with response, open_staged(dest, suffix=".part", fsync=False) as out:
            digest = _stream(response, out, url, dest.name, expected, limit, progress)
            if expected is not None and out.tell() != expected:
                raise WeightsError(
                    f"download of {url} was interrupted: got {out.tell()} of {expected} bytes; nothing was "
                    "saved; run the command again"
                )
            if not _check_hash(digest, sha256):
                raise WeightsError(
                    f"sha256 mismatch for {url}: expected {sha256}, got {digest}; the download was deleted "
                    "(a corrupted transfer or a changed file: try again, or report it)"
                )
    except OSError as exc:
        raise WeightsError(
            f"cannot save {dest} ({exc.strerror or exc}); nothing was saved; free space or set SRLAB_CACHE"
        ) from None
    return dest


def _stream(response, out, url: str, name: str, expected: int | None, limit: int, progress: bool) -> str:
    """Copy the body into ``out`` with a progress bar, at most ``limit`` bytes; the sha256 hex digest."""
    h = hashlib.sha256()
    got = 0
    with tqdm(
        total=expected,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=None if progress else True,
        leave=False,
    ) as bar:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (http.client.IncompleteRead, OSError) as exc:
                raise WeightsError(
                    f"download of {url} was interrupted after {got} bytes ({type(exc).__name__}); "
                    "nothing was saved; run the command again"
                ) from None
            if not chunk:
                return h.hexdigest()
            got += len(chunk)
            if got > limit:
                raise WeightsError(
                    f"download of {url} is larger than {limit} bytes (the expected size or srlab's cap); "
                    "nothing was saved; check the URL"
                )
            out.write(chunk)
            h.update(chunk)
            bar.update(len(chunk))
