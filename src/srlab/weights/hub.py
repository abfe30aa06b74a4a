"""Remote weight files: Hugging Face Hub (``hf://``) and URLs with a pinned hash, cached once.

- ``hf://owner/repo/path/to/file.safetensors``, optionally ``hf://owner/repo@revision/...`` (a branch, tag
  or commit; a commit pins the file) and ``#sha256=<hex>``. Fetched with ``huggingface_hub`` (optional:
  ``pip install "srlab[hub]"``; it honours ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE``) into
  ``<cache root>/hub/<owner>/<repo>/<revision>/<path>``; a file already there is used without asking the
  Hub again (pass a commit as the revision to pin what "there" means).
- ``https://.../file.pth#sha256=<64 hex>`` (also ``http://`` and ``file://``): the hash is required, so a
  changed or tampered file is refused; fetched by :func:`srlab.weights.download.download` (progress bar,
  hash check, atomic rename) into ``<cache root>/weights/urls/<first 16 hex>/<file name>``.

A failed or mismatched download leaves nothing in the cache. Offline, the error is one line saying which
URL to download and exactly where to save it. The strings are untrusted: owner, repository, revision and
path are checked so that no part can leave the cache folder.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from srlab.errors import ConfigError, WeightsError
from srlab.runtime import cache_dir, cache_root
from srlab.weights.download import download, sha256_file

__all__ = ["HubRef", "fetch_remote", "parse_hf", "parse_url"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._+=-][A-Za-z0-9 ._+=-]{0,254}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HUB_INSTALL = 'pip install "srlab[hub]"'


class HubRef:
    """A parsed ``hf://`` reference."""

    def __init__(self, owner: str, repo: str, revision: str, path: str, sha256: str | None) -> None:
        self.owner, self.repo, self.revision, self.path, self.sha256 = owner, repo, revision, path, sha256

    @property
    def repo_id(self) -> str:
        return f"{self.owner}/{self.repo}"

    def url(self, endpoint: str | None = None) -> str:
        base = (endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        return f"{base}/{self.repo_id}/resolve/{self.revision}/{self.path}"

    def local_dir(self) -> Path:
        return cache_dir("hub") / self.owner / self.repo / self.revision.replace("/", "--")

    def local_path(self) -> Path:
        return self.local_dir().joinpath(*self.path.split("/"))


def _sha_fragment(fragment: str, ref: str, *, required: bool) -> str | None:
    if not fragment:
        if required:
            raise ConfigError(
                f"{ref}: a URL needs its file's hash pinned: append #sha256=<64 hex digits> "
                "(sha256sum of the file you expect)"
            )
        return None
    key, _, value = fragment.partition("=")
    value = value.strip().lower()
    if key.strip().lower() != "sha256" or not _HEX64.match(value):
        raise ConfigError(f"{ref}: the fragment must be #sha256=<64 hex digits>, not #{fragment[:80]}")
    return value


def parse_hf(ref: str) -> HubRef:
    """``hf://owner/repo[@revision]/path[#sha256=hex]`` -> :class:`HubRef` (ConfigError on anything else)."""
    body, _, fragment = ref[len("hf://") :].partition("#")
    sha = _sha_fragment(fragment, ref, required=False)
    parts = body.split("/")
    if len(parts) < 3 or not all(parts):
        raise ConfigError(
            f"{ref}: expected hf://owner/repo/path/to/file (e.g. hf://owner/repo/model.safetensors)"
        )
    owner, repo = parts[0], parts[1]
    revision = "main"
    if "@" in repo:
        repo, _, revision = repo.partition("@")
    path_parts = parts[2:]
    if not _NAME.match(owner) or not _NAME.match(repo):
        raise ConfigError(f"{ref}: {owner}/{repo} is not a Hugging Face repository name")
    if not _REVISION.match(revision) or ".." in revision:
        raise ConfigError(f"{ref}: {revision!r} is not a revision (branch, tag or commit)")
    for seg in path_parts:
        if seg in (".", "..") or not _SEGMENT.match(seg):
            raise ConfigError(f"{ref}: the file path {'/'.join(path_parts)!r} has an unusable part {seg!r}")
    return HubRef(owner, repo, revision, "/".join(path_parts), sha)


def parse_url(ref: str) -> tuple[str, str, str]:
    """``scheme://.../name#sha256=hex`` -> ``(url without the fragment, sha256, safe file name)``."""
    parts = urlsplit(ref)
    if parts.scheme.lower() not in ("http", "https", "file"):
        raise ConfigError(f"{ref}: only http(s):// and file:// URLs (and hf://) are supported")
    sha = _sha_fragment(parts.fragment, ref, required=True)
    url = parts._replace(fragment="").geturl()
    base = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", base).lstrip(".")[:120] or "weights"
    return url, sha, name


def _verified(path: Path, sha256: str | None, what: str) -> Path:
    if sha256 is not None:
        digest = sha256_file(path)
        if digest != sha256:
            raise WeightsError(
                f"{path}: sha256 {digest[:16]}... is not the {sha256[:16]}... pinned by {what}; delete the file "
                "and load it again"
            )
    return path


def _prune(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents up to (not including) ``stop`` while they are empty."""
    try:
        folder.relative_to(stop)
    except ValueError:
        return
    while folder != stop:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def fetch_url(ref: str, *, progress: bool = True) -> Path:
    """The cached, hash-checked file for ``http(s)://`` / ``file://`` ``...#sha256=<hex>``."""
    url, sha, name = parse_url(ref)
    dest = cache_dir("weights") / "urls" / sha[:16] / name
    if dest.is_file():
        return _verified(dest, sha, ref)
    try:
        download(url, dest, sha256=sha, progress=progress)
    finally:
        if not dest.is_file():
            _prune(dest.parent, cache_root())
    return dest


def fetch_hf(ref: str, *, progress: bool = True) -> Path:
    """The cached file for ``hf://owner/repo[@revision]/path[#sha256=hex]``, downloaded on first use."""
    hub = parse_hf(ref)
    dest = hub.local_path()
    if dest.is_file():
        return _verified(dest, hub.sha256, ref)
    manual = f"download {hub.url()} (browser, curl -L -o) and save it as {dest}"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise WeightsError(f"{ref}: hf:// needs huggingface_hub ({_HUB_INSTALL}); or {manual}") from None
    local_dir = hub.local_dir()
    existed = local_dir.exists()
    try:
        got = Path(
            hf_hub_download(
                hub.repo_id,
                hub.path,
                revision=hub.revision,
                local_dir=local_dir,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )
        )
        if hub.sha256 is not None and sha256_file(got) != hub.sha256:
            got.unlink(missing_ok=True)
            raise WeightsError(
                f"{ref}: the downloaded file's sha256 is not the pinned {hub.sha256[:16]}...; it was deleted "
                "(the file changed on the Hub: pin a commit with @revision, or update the hash)"
            )
    except WeightsError:
        _cleanup_hub(local_dir, existed)
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface_hub and httpx raise many kinds; all mean "not fetched"
        _cleanup_hub(local_dir, existed)
        raise WeightsError(f"cannot fetch {ref} ({_hub_reason(exc)}); {manual}") from None
    return got


def _cleanup_hub(local_dir: Path, existed: bool) -> None:
    if not existed and local_dir.exists():
        shutil.rmtree(local_dir, ignore_errors=True)  # only what this call created: its metadata and partials
    _prune(local_dir.parent, cache_root())


def _hub_reason(exc: Exception) -> str:
    kind = type(exc).__name__
    reasons = {
        "RepositoryNotFoundError": "no such repository, or it is private: log in with `hf auth login` or set HF_TOKEN",
        "GatedRepoError": "the repository is gated: accept its terms on the Hub and set HF_TOKEN",
        "RevisionNotFoundError": "no such revision",
        "EntryNotFoundError": "no such file in the repository",
        "RemoteEntryNotFoundError": "no such file in the repository",
        "OfflineModeIsEnabled": "HF_HUB_OFFLINE is set",
        "LocalEntryNotFoundError": "the Hub cannot be reached: offline, or HF_HUB_OFFLINE is set",
    }
    if kind in reasons:
        return reasons[kind]
    text = " ".join(str(exc).split())
    return f"{kind}: {text[:140]}" if text else kind


def fetch_remote(ref: str, *, progress: bool = True) -> Path:
    """Local path of a remote model reference (``hf://``, ``http(s)://``, ``file://``), fetching it once."""
    if ref.lower().startswith("hf://"):
        return fetch_hf(ref, progress=progress)
    return fetch_url(ref, progress=progress)
