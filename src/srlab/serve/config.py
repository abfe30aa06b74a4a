"""The server's settings: one frozen record that the app, the workers and the CLI share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from srlab.errors import ConfigError
from srlab.runtime import cache_dir

__all__ = ["ServeConfig", "default_data_dir", "is_loopback"]


def default_data_dir() -> Path:
    """Where jobs live when ``--data`` is not given: ``serve/`` under srlab's cache root (``$SRLAB_CACHE``)."""
    return cache_dir("serve")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """Everything the app and its workers need to know; validated once, at construction."""

    data_dir: Path
    token: str | None = None  # None: no authentication (loopback only; the CLI enforces that)
    workers: int = 1
    devices: tuple[str, ...] = ("cpu",)  # one per worker, cycled
    max_upload_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 40_000_000  # of an input image (or a video frame)
    max_queued_per_client: int = 16
    max_compare_models: int = 6
    keep_days: float = 7.0  # finished jobs older than this are deleted (0: kept until deleted)
    keep_bytes: int = 5 * 1024**3  # past this, the oldest finished jobs are deleted first (0: no limit)
    models_dir: Path | None = None  # weight files under it are accepted as ``file:NAME``
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, not {self.workers}")
        if self.max_upload_bytes < 1024:
            raise ConfigError("--max-upload-mb is too small (at least 1 KB)")
        if self.max_pixels < 1:
            raise ConfigError("--max-pixels must be > 0")
        if self.max_queued_per_client < 1:
            raise ConfigError("--max-queued must be >= 1")
        if self.keep_days < 0 or self.keep_bytes < 0:
            raise ConfigError("--keep-days and --keep-gb must be >= 0 (0: no limit)")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("--token must be at least 16 characters (leave it out to get a random one)")
        if self.models_dir is not None and not Path(self.models_dir).is_dir():
            raise ConfigError(f"--models-dir {self.models_dir}: no such folder")

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "jobs.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return Path(self.data_dir) / "jobs"

    @property
    def tmp_dir(self) -> Path:
        return Path(self.data_dir) / "incoming"
