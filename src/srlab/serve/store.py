"""The job store: one SQLite file (``jobs.sqlite3``) and one folder per job (``jobs/<id>/``).

A job goes ``queued`` -> ``running`` -> ``done`` | ``failed``. A worker claims the oldest queued job in one
write transaction and gets a fresh ``run_id``; every later update it makes names that run_id, so a worker
that lost its job (deleted, or recovered after a server restart) changes nothing. ``done`` is set only after
the result files are in place (written with srlab's atomic writers), so a done job always has its files.

:meth:`JobStore.recover` runs when the server starts: a job left ``running`` by a server that died is queued
again (its earlier attempt's partial files are temporary names, never served) unless it already ran
:data:`MAX_ATTEMPTS` times, in which case it is failed with that reason; a ``done`` job whose result file is
gone is failed too. :meth:`JobStore.prune` applies the retention limits (age, then total size).

SQLite runs in WAL mode, so readers (the API) never wait for a worker's write; each call opens its own
short-lived connection, which keeps the store safe to use from any thread or process.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srlab import serialize

__all__ = ["ID_PATTERN", "MAX_ATTEMPTS", "Job", "JobStore", "new_id"]

MAX_ATTEMPTS = 2
"""Runs a job gets when the server dies under it: the first re-run may be a bad-luck crash; a second death
is taken as the job's own doing (e.g. it exhausts the machine's memory) and the job is failed."""

ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
_TERMINAL = ("done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    note TEXT,
    client TEXT NOT NULL,
    params TEXT NOT NULL,
    result TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
"""


def new_id() -> str:
    return secrets.token_hex(8)


@dataclass
class Job:
    id: str
    kind: str  # "upscale" or "compare"
    status: str
    progress: float
    error: str | None
    note: str | None
    client: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    created: float
    started: float | None
    finished: float | None
    attempts: int
    run_id: str | None

    def public(self) -> dict[str, Any]:
        """What the API shows (no client address, no run id)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": round(self.progress, 4),
            "error": self.error,
            "note": self.note,
            "params": self.params,
            "result": self.result,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "attempts": self.attempts,
        }


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["params"] = serialize.loads(d["params"])
    d["result"] = serialize.loads(d["result"]) if d["result"] else None
    return Job(**d)


class JobStore:
    def __init__(self, db_path: str | Path, jobs_dir: str | Path) -> None:
        self.db_path, self.jobs_dir = Path(db_path), Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection uses it
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _db(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            if write:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            else:
                yield db
        finally:
            db.close()

    def folder(self, job_id: str) -> Path:
        if not ID_PATTERN.match(job_id):  # ids become folder names: never let anything else through
            raise ValueError(f"bad job id {job_id!r}")
        return self.jobs_dir / job_id

    # ------------------------------------------------------------------ API side
    def create(self, job_id: str, kind: str, client: str, params: dict[str, Any]) -> None:
        with self._db(write=True) as db:
            db.execute(
                "INSERT INTO jobs (id, kind, status, client, params, created) VALUES (?, ?, 'queued', ?, ?, ?)",
                (job_id, kind, client, serialize.dumps(params, indent=None), time.time()),
            )

    def get(self, job_id: str) -> Job | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def recent(self, limit: int = 50) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def running(self) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall()
        return [_job(r) for r in rows]

    def active_count(self, client: str) -> int:
        with self._db() as db:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE client = ? AND status IN ('queued', 'running')", (client,)
            ).fetchone()
        return int(n)

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def delete(self, job_id: str) -> bool:
        """Forget the job and remove its folder; a worker still running it finds its run gone and stops."""
        with self._db(write=True) as db:
            n = db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return n > 0

    # ------------------------------------------------------------------ worker side
    def claim(self, worker: str) -> Job | None:
        """The oldest queued job, now running under a fresh run id (None when the queue is empty)."""
        run_id = f"{worker}:{secrets.token_hex(6)}"
        with self._db(write=True) as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', run_id = ?, attempts = attempts + 1, started = ?, "
                "progress = 0 WHERE id = ?",
                (run_id, time.time(), row[0]),
            )
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (row[0],)).fetchone()
        return _job(job)

    def owns(self, job_id: str, run_id: str) -> bool:
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM jobs WHERE id = ? AND run_id = ? AND status = 'running'", (job_id, run_id)
            ).fetchone()
        return row is not None

    def set_progress(self, job_id: str, run_id: str, progress: float) -> bool:
        with self._db(write=True) as db:
            n = db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND run_id = ? AND status = 'running'",
                (max(0.0, min(1.0, float(progress))), job_id, run_id),
            ).rowcount
        return n > 0

    def finish(self, job_id: str, run_id: str, result: dict[str, Any]) -> bool:
        """Mark done (the result's files must already be in place); False when the run was taken away."""
        with self._db(write=True) as db:
            n = db.execute(
                "UPDATE jobs SET status = 'done', progress = 1, result = ?, finished = ?, error = NULL "
                "WHERE id = ? AND run_id = ? AND status = 'running'",
                (serialize.dumps(result, indent=None), time.time(), job_id, run_id),
            ).rowcount
        return n > 0

    def fail(self, job_id: str, run_id: str | None, error: str) -> bool:
        with self._db(write=True) as db:
            if run_id is None:
                n = db.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ? AND "
                    "status IN ('queued', 'running')",
                    (error, time.time(), job_id),
                ).rowcount
            else:
                n = db.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ? AND run_id = ? "
                    "AND status = 'running'",
                    (error, time.time(), job_id, run_id),
                ).rowcount
        return n > 0

    def requeue_run(self, job_id: str, run_id: str, note: str) -> bool:
        """Put a job whose worker died back in the queue (or fail it after MAX_ATTEMPTS runs)."""
        with self._db(write=True) as db:
            row = db.execute(
                "SELECT attempts FROM jobs WHERE id = ? AND run_id = ? AND status = 'running'",
                (job_id, run_id),
            ).fetchone()
            if row is None:
                return False
            self._requeue_or_fail(db, job_id, int(row[0]), note)
        return True

    # ------------------------------------------------------------------ housekeeping
    def _requeue_or_fail(self, db: sqlite3.Connection, job_id: str, attempts: int, why: str) -> None:
        if attempts >= MAX_ATTEMPTS:
            db.execute(
                "UPDATE jobs SET status = 'failed', run_id = NULL, finished = ?, error = ? WHERE id = ?",
                (time.time(), f"{why} during each of its {attempts} runs; it was not run again", job_id),
            )
        else:
            db.execute(
                "UPDATE jobs SET status = 'queued', run_id = NULL, progress = 0, note = ? WHERE id = ?",
                (f"{why} while it ran; queued again (run {attempts + 1} of {MAX_ATTEMPTS})", job_id),
            )

    def release_running(self) -> int:
        """At a clean stop: the jobs still running go back to the queue without using up a run."""
        with self._db(write=True) as db:
            return db.execute(
                "UPDATE jobs SET status = 'queued', run_id = NULL, progress = 0, attempts = MAX(attempts - 1, 0), "
                "note = 'the server was stopped while it ran; queued again' WHERE status = 'running'"
            ).rowcount

    def recover(self) -> dict[str, int]:
        """At server start: re-queue (or fail) the jobs a dead server left running, fail done jobs whose
        result file is missing, and delete the temporary files interrupted writes left in job folders."""
        requeued = failed = 0
        with self._db(write=True) as db:
            for row in db.execute("SELECT id, attempts FROM jobs WHERE status = 'running'").fetchall():
                self._requeue_or_fail(db, row[0], int(row[1]), "the server stopped")
                if int(row[1]) >= MAX_ATTEMPTS:
                    failed += 1
                else:
                    requeued += 1
            for row in db.execute("SELECT id, result FROM jobs WHERE status = 'done'").fetchall():
                files = serialize.loads(row[1] or "{}").get("files", [])
                if not files or not all((self.folder(row[0]) / f).is_file() for f in files):
                    db.execute(
                        "UPDATE jobs SET status = 'failed', error = ? WHERE id = ?",
                        ("its result file is missing from the data folder; submit the job again", row[0]),
                    )
                    failed += 1
        for folder in self.jobs_dir.iterdir() if self.jobs_dir.is_dir() else ():
            for tmp in folder.glob(".*"):  # srlab.atomic / staged_output temporaries: never complete files
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return {"requeued": requeued, "failed": failed}

    def prune(self, *, keep_days: float, keep_bytes: int, now: float | None = None) -> list[str]:
        """Delete finished jobs older than ``keep_days`` (0: no age limit), then the oldest finished jobs
        while the job folders total more than ``keep_bytes`` (0: no size limit). Returns the ids deleted."""
        now = time.time() if now is None else now
        gone: list[str] = []
        with self._db() as db:
            rows = db.execute(
                "SELECT id, finished FROM jobs WHERE status IN ('done', 'failed') ORDER BY finished"
            ).fetchall()
        finished = [(r[0], r[1] or 0.0) for r in rows]
        if keep_days > 0:
            cutoff = now - keep_days * 86400
            for job_id, t in finished:
                if t < cutoff:
                    self.delete(job_id)
                    gone.append(job_id)
        if keep_bytes > 0:
            left = [(j, t) for j, t in finished if j not in gone]
            sizes = {j: _folder_bytes(self.folder(j)) for j, _ in left}
            total = sum(_folder_bytes(p) for p in self.jobs_dir.iterdir() if p.is_dir())
            for job_id, _ in left:
                if total <= keep_bytes:
                    break
                self.delete(job_id)
                total -= sizes[job_id]
                gone.append(job_id)
        return gone


def _folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0
