"""The job store's promises: a job left running by a dead server is run again once, then failed with the
reason; a done job whose file vanished is failed; stale workers cannot finish a job they lost; retention."""

from __future__ import annotations

import os
import time

import pytest

from srlab.serve.store import MAX_ATTEMPTS, JobStore, new_id


@pytest.fixture()
def store(tmp_path):
    return JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")


def _job(store, client="c"):
    job_id = new_id()
    store.folder(job_id).mkdir(parents=True)
    store.create(job_id, "upscale", client, {"model": "bicubic-x2", "input": "input.png"})
    return job_id


def test_dead_server_job_rerun_then_failed(store):
    job_id = _job(store)
    run1 = store.claim("w0-1")
    assert run1.id == job_id and run1.status == "running" and run1.attempts == 1
    (store.folder(job_id) / ".result.png.abc.tmp").write_bytes(b"half")  # an interrupted atomic write
    assert store.recover() == {"requeued": 1, "failed": 0}
    job = store.get(job_id)
    assert job.status == "queued" and "server stopped" in job.note
    assert not (store.folder(job_id) / ".result.png.abc.tmp").exists()
    # the first run's worker, if it survived, can no longer touch the job
    assert not store.finish(job_id, run1.run_id, {"files": ["result.png"]})
    assert not store.set_progress(job_id, run1.run_id, 0.5)
    run2 = store.claim("w0-2")
    assert run2.attempts == MAX_ATTEMPTS
    assert store.recover() == {"requeued": 0, "failed": 1}
    job = store.get(job_id)
    assert job.status == "failed" and "the server stopped" in job.error and "not run again" in job.error
    assert store.claim("w0-3") is None


def test_clean_stop_does_not_use_up_a_run(store):
    job_id = _job(store)
    store.claim("w0-1")
    assert store.release_running() == 1
    job = store.get(job_id)
    assert job.status == "queued" and job.attempts == 0


def test_done_without_its_file_is_failed(store):
    job_id = _job(store)
    run = store.claim("w0-1")
    (store.folder(job_id) / "result.png").write_bytes(b"png")
    assert store.finish(job_id, run.run_id, {"files": ["result.png"]})
    assert store.recover() == {"requeued": 0, "failed": 0}
    (store.folder(job_id) / "result.png").unlink()
    assert store.recover()["failed"] == 1
    assert "missing" in store.get(job_id).error


def test_prune_by_age_then_size(store):
    ids = []
    for _ in range(3):
        job_id = _job(store)
        run = store.claim("w")
        (store.folder(job_id) / "result.png").write_bytes(b"x" * 1000)
        store.finish(job_id, run.run_id, {"files": ["result.png"]})
        ids.append(job_id)
        time.sleep(0.01)
    now = time.time()
    assert store.prune(keep_days=1, keep_bytes=0, now=now) == []
    assert store.prune(keep_days=1, keep_bytes=0, now=now + 2 * 86400) == ids
    ids = []
    for _ in range(3):
        job_id = _job(store)
        run = store.claim("w")
        (store.folder(job_id) / "result.png").write_bytes(b"x" * 1000)
        store.finish(job_id, run.run_id, {"files": ["result.png"]})
        ids.append(job_id)
        time.sleep(0.01)
    queued = _job(store)  # never pruned: not finished
    assert store.prune(keep_days=0, keep_bytes=2000) == ids[:1]  # oldest first, until under the limit
    assert store.get(queued).status == "queued" and os.path.isdir(store.folder(queued))


def test_ids_never_become_paths(store):
    with pytest.raises(ValueError):
        store.folder("../../etc")


def test_dead_worker_job_requeued_once_then_failed(store):
    job_id = _job(store)
    run = store.claim("w0-100")
    assert not store.requeue_run(job_id, "w9-1:other", "its worker process died")  # not that run
    assert store.requeue_run(job_id, run.run_id, "its worker process died (exit code -9)")
    assert store.get(job_id).status == "queued" and "worker process died" in store.get(job_id).note
    run = store.claim("w0-101")
    assert store.requeue_run(job_id, run.run_id, "its worker process died (exit code -9)")
    job = store.get(job_id)
    assert job.status == "failed" and job.error.startswith(
        "its worker process died (exit code -9) during each"
    )
