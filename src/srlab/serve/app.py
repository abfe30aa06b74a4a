"""The Starlette application: the JSON API, server-sent progress events, the OpenAPI description and the
static page, in front of the job store and the worker pool (see :mod:`srlab.serve`).

Every error is a 4xx/5xx with one line as ``{"error": ...}``: :class:`~srlab.serve.errors.ApiError` for
what a request got wrong, Starlette's 404/405 for unknown routes, and a generic 500 (the traceback goes to
the server log, never to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from srlab import serialize
from srlab.errors import SrlabError
from srlab.serve import catalogue as cat
from srlab.serve.config import ServeConfig
from srlab.serve.errors import ApiError
from srlab.serve.jobs import media_type
from srlab.serve.openapi import openapi_spec
from srlab.serve.security import AccessLog, TokenGate, client_key
from srlab.serve.store import ID_PATTERN, JobStore, new_id
from srlab.serve.uploads import read_multipart, store_upload
from srlab.serve.workers import WorkerPool

__all__ = ["create_app"]

STATIC = Path(__file__).resolve().parent / "static"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
log = logging.getLogger("srlab.serve")


class JSONResponse(_StarletteJSON):
    """JSON by srlab's one rule (:mod:`srlab.serialize`): a PSNR of identical images (infinity) or a NaN
    score is sent as the string ``"Infinity"``/``"NaN"``, where Starlette's strict encoder would fail."""

    def render(self, content: Any) -> bytes:
        return serialize.dumps(content, indent=None).encode("utf-8")


def _download_stem(job) -> str:
    # the JSON rule reads a stored name "NaN" or "Infinity" back as a float; jsonable gives its text back
    return str(serialize.jsonable(job.params.get("name", "image")))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _display_name(raw: str | None) -> str:
    """A safe name for downloads only (``Content-Disposition``), never a path: the last component, plain chars."""
    base = re.split(r"[\\/]", raw or "")[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", base.rsplit(".", 1)[0])[:60].strip("._")
    return stem or "image"


def _number(fields: dict, key: str, kind, lo, hi):
    raw = fields.get(key, "").strip()
    if raw in ("", "auto", "none"):
        return None
    try:
        v = kind(raw)
    except ValueError:
        raise ApiError(400, f"{key}: {raw[:40]!r} is not a number") from None
    if not (isinstance(v, int) or math.isfinite(v)) or not lo <= v <= hi:
        raise ApiError(400, f"{key}: {raw[:40]} is out of range ({lo}..{hi})")
    return v


class _Service:
    def __init__(self, config: ServeConfig, start_workers: bool = True) -> None:
        self.config = config
        self.store = JobStore(config.db_path, config.jobs_dir)
        self.pool = WorkerPool(config, self.store)
        self.start_workers = start_workers
        self._models: tuple[float, list] = (0.0, [])

    # ------------------------------------------------------------------ helpers
    def models(self) -> list[dict]:
        t, entries = self._models
        if time.monotonic() - t > 10:  # a fetched zoo file shows up within seconds, without a restart
            entries = cat.catalogue(self.config.models_dir)
            self._models = (time.monotonic(), entries)
        return entries

    def _job(self, job_id: str):
        if not ID_PATTERN.match(job_id):
            raise ApiError(404, f"no job {job_id[:40]!r}")
        job = self.store.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id}; it was deleted or never existed")
        return job

    def _check_cap(self, request: Request) -> str:
        client = client_key(request.scope)
        if self.store.active_count(client) >= self.config.max_queued_per_client:
            raise ApiError(
                429,
                f"you have {self.config.max_queued_per_client} jobs queued or running; wait for them to finish",
            )
        return client

    def _resolve(self, name: str) -> None:
        try:
            cat.resolve_request(name, self.config.models_dir, self.models())
        except SrlabError as exc:
            raise ApiError(400, str(exc)) from None

    def _common(self, fields: dict) -> dict[str, Any]:
        precision = fields.get("precision", "auto").strip() or "auto"
        if precision not in PRECISIONS:
            raise ApiError(400, f"precision: {precision[:20]!r}; use one of {', '.join(PRECISIONS)}")
        return {"tile": _number(fields, "tile", int, 0, 8192), "precision": precision}

    async def _store(self, part: tuple[bytes, str] | None, folder: Path, stem: str, field: str):
        if part is None:
            raise ApiError(400, f"no '{field}' file in the upload")
        try:
            return await run_in_threadpool(store_upload, part[0], folder, stem, self.config.max_pixels)
        except SrlabError as exc:
            raise ApiError(400, str(exc)) from None

    # ------------------------------------------------------------------ endpoints
    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"models": await run_in_threadpool(self.models)})

    async def list_jobs(self, request: Request) -> Response:
        jobs = await run_in_threadpool(self.store.recent, 50)
        return JSONResponse({"jobs": [j.public() for j in jobs]})

    async def create_job(self, request: Request) -> Response:
        client = await run_in_threadpool(self._check_cap, request)
        fields, files = await read_multipart(request, self.config.max_upload_bytes, max_files=1)
        model = fields.get("model", "").strip()
        if not model:
            raise ApiError(400, "model: missing; GET /api/models lists the names")
        await run_in_threadpool(self._resolve, model)
        params = {
            "model": model,
            "scale": _number(fields, "scale", float, 0.05, 16.0),
            **self._common(fields),
        }
        job_id = new_id()
        folder = self.store.folder(job_id)
        try:
            name, info = await self._store(files.get("file"), folder, "input", "file")
            params.update(
                input=name,
                media=info.kind,
                alpha=info.alpha,
                width=info.width,
                height=info.height,
                frames=info.frames,
                name=_display_name(files["file"][1]),
            )
            await run_in_threadpool(self.store.create, job_id, "upscale", client, params)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing kept of a refused upload
            raise
        return JSONResponse({"id": job_id, "status": "queued"}, status_code=202)

    async def create_compare(self, request: Request) -> Response:
        client = await run_in_threadpool(self._check_cap, request)
        fields, files = await read_multipart(request, self.config.max_upload_bytes, max_files=2)
        models = [m.strip() for m in fields.get("models", fields.get("model", "")).split(",") if m.strip()]
        if not models:
            raise ApiError(400, "models: give one or more model names, comma-separated")
        if len(models) > self.config.max_compare_models:
            raise ApiError(400, f"models: at most {self.config.max_compare_models} per comparison")
        for m in models:
            await run_in_threadpool(self._resolve, m)
        protocol = fields.get("protocol", "standard").strip() or "standard"
        if protocol not in ("standard", "study"):
            raise ApiError(400, f"protocol: {protocol[:20]!r}; use standard or study")
        job_id = new_id()
        folder = self.store.folder(job_id)
        try:
            name, info = await self._store(files.get("file"), folder, "input", "file")
            if info.kind != "image":
                raise ApiError(400, f"compare takes one still image, not a {info.kind}; use POST /api/jobs")
            truth = None
            if files.get("truth"):
                truth, tinfo = await self._store(files["truth"], folder, "truth", "truth")
                if tinfo.kind != "image":
                    raise ApiError(400, "truth: must be a still image")
            params = {
                "models": models,
                "protocol": protocol,
                "input": name,
                "truth": truth,
                "media": "image",
                "width": info.width,
                "height": info.height,
                **self._common(fields),
                "name": _display_name(files["file"][1]),
            }
            await run_in_threadpool(self.store.create, job_id, "compare", client, params)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing kept of a refused upload
            raise
        return JSONResponse({"id": job_id, "status": "queued"}, status_code=202)

    async def get_job(self, request: Request) -> Response:
        job = await run_in_threadpool(self._job, request.path_params["id"])
        return JSONResponse(job.public())

    async def delete_job(self, request: Request) -> Response:
        job = await run_in_threadpool(self._job, request.path_params["id"])
        await run_in_threadpool(self.store.delete, job.id)
        return JSONResponse({"id": job.id, "deleted": True})

    def _file(self, job, name: str, download: str | None = None) -> Response:
        path = self.store.folder(job.id) / name
        if not path.is_file():
            raise ApiError(410, f"job {job.id}: its file is gone from the data folder; submit it again")
        headers = {"cache-control": "private, max-age=3600"}
        if download:
            headers["content-disposition"] = f'attachment; filename="{download}"'
        return FileResponse(path, media_type=media_type(name), headers=headers)

    async def get_result(self, request: Request) -> Response:
        job = await run_in_threadpool(self._job, request.path_params["id"])
        if job.status != "done":
            detail = f": {job.error}" if job.error else ""
            raise ApiError(409, f"job {job.id} is {job.status}{detail}; its result comes when it is done")
        if job.kind == "compare":
            return JSONResponse(job.result)
        name = job.result["file"]
        dl = f"{_download_stem(job)}_x{job.result.get('scale', '')}{Path(name).suffix}"
        download = dl if request.query_params.get("download") else None
        return self._file(job, name, download)

    async def get_file(self, request: Request) -> Response:
        """An input, ground truth or output of a job, by the name the job recorded (nothing else is served)."""
        job = await run_in_threadpool(self._job, request.path_params["id"])
        name = request.path_params["name"]
        allowed = {job.params.get("input"), job.params.get("truth")}
        if job.status == "done":
            allowed |= set(job.result.get("files", []))
        if name not in allowed - {None}:
            raise ApiError(404, f"job {job.id} has no file {name[:60]!r}")
        download = None
        if request.query_params.get("download"):
            download = f"{_download_stem(job)}_{Path(name).stem}{Path(name).suffix}"
        return self._file(job, name, download)

    async def events(self, request: Request) -> Response:
        job = await run_in_threadpool(self._job, request.path_params["id"])

        async def stream():
            last, beat = None, time.monotonic()
            while True:
                cur = await run_in_threadpool(self.store.get, job.id)
                if cur is None:
                    yield "event: deleted\ndata: {}\n\n"
                    return
                state = (cur.status, round(cur.progress, 3))
                if state != last:
                    last, beat = state, time.monotonic()
                    body = serialize.dumps(
                        {"id": cur.id, "status": cur.status, "progress": cur.progress, "error": cur.error},
                        indent=None,
                    )
                    yield f"event: {cur.status}\ndata: {body}\n\n"
                    if cur.status in ("done", "failed"):
                        return
                elif time.monotonic() - beat > 15:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.25)

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # nginx: pass events through
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def health(self, request: Request) -> Response:
        counts = await run_in_threadpool(self.store.counts)
        return JSONResponse({"workers": self.pool.alive(), "worker_pids": self.pool.pids(), "jobs": counts})

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def docs(self, request: Request) -> Response:
        return FileResponse(STATIC / "docs.html", headers={"cache-control": "no-cache"})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_spec(request.scope.get("root_path", "")))

    # ------------------------------------------------------------------ lifecycle
    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        said = self.store.recover()
        if any(said.values()):
            log.warning(
                "recovered after a stop: %d job(s) queued again, %d failed", said["requeued"], said["failed"]
            )
        self.store.prune(keep_days=self.config.keep_days, keep_bytes=self.config.keep_bytes)
        task = None
        if self.start_workers:
            self.pool.start()
            task = asyncio.create_task(self._supervise())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.pool.stop()
            self.store.release_running()

    async def _supervise(self) -> None:
        last_prune = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            for line in self.pool.check():  # from the event loop's thread, so children die with the server
                log.warning("%s", line)
            if time.monotonic() - last_prune > 60:
                last_prune = time.monotonic()
                await run_in_threadpool(
                    self.store.prune, keep_days=self.config.keep_days, keep_bytes=self.config.keep_bytes
                )


async def _api_error(request: Request, exc: ApiError) -> Response:
    return _error(exc.status, exc.message)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    text = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, f"{text}: {request.method} {request.url.path}")


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("error in %s %s", request.method, request.url.path)
    return _error(500, "internal error; the server log has the details")


def create_app(config: ServeConfig, *, start_workers: bool = True) -> Starlette:
    """The ASGI app for ``config``; ``start_workers=False`` leaves the jobs queued (for API-only tests)."""
    svc = _Service(config, start_workers)
    routes = [
        Route("/", svc.index),
        Route("/docs", svc.docs),
        Route("/openapi.json", svc.openapi),
        Route("/api/health", svc.health),
        Route("/api/models", svc.list_models),
        Route("/api/jobs", svc.list_jobs, methods=["GET"]),
        Route("/api/jobs", svc.create_job, methods=["POST"]),
        Route("/api/compare", svc.create_compare, methods=["POST"]),
        Route("/api/jobs/{id}", svc.get_job, methods=["GET"]),
        Route("/api/jobs/{id}", svc.delete_job, methods=["DELETE"]),
        Route("/api/jobs/{id}/result", svc.get_result),
        Route("/api/jobs/{id}/events", svc.events),
        Route("/api/jobs/{id}/files/{name}", svc.get_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(AccessLog), Middleware(TokenGate, token=config.token)]
    if config.cors_origins:
        middleware.append(
            Middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"])
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=svc.lifespan,
    )
    app.state.service = svc
    return app
