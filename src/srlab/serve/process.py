"""``srlab serve`` as a child process: start it on a free loopback port, learn its URL from the line it
prints, stop it (gracefully, or with SIGKILL to simulate a crash). The end-to-end tests and
``benchmarks/serve_load.py`` drive the real server this way."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["ServerProcess"]

_URL = re.compile(r"srlab serve: (http://\S+)")


class ServerProcess:
    """``with ServerProcess(data_dir) as srv: srv.url`` — a running ``srlab serve --port 0``."""

    def __init__(
        self, data_dir: str | Path, *args: str, env: dict | None = None, timeout: float = 120.0
    ) -> None:
        self.data_dir, self.args, self.timeout = Path(data_dir), list(args), timeout
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.lines: list[str] = []

    def start(self) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "srlab",
            "serve",
            "--port",
            "0",
            "--data",
            str(self.data_dir),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                m = _URL.search(line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while not found.wait(0.1):
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("srlab serve did not start in time:\n" + "\n".join(self.lines[-20:]))
        if not self.url:
            raise RuntimeError("srlab serve exited:\n" + "\n".join(self.lines[-20:]))
        return self

    @property
    def base(self) -> str:
        """The URL without its ``?token=`` query."""
        return self.url.split("?", 1)[0].rstrip("/")

    def kill(self) -> None:
        """SIGKILL the server alone (not its workers: they must notice by themselves), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
