"""The OpenAPI 3.1 description of the API (``/openapi.json``), written out here rather than generated,
so the ``/docs`` page (a static file that renders it, with no CDN) documents exactly what the routes do."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_spec"]

_ERR = {
    "description": 'one line: {"error": ...}',
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ID = [
    {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}
]
_UPLOAD_ERRORS = {
    "400": _ERR | {"description": "not an image/video, unknown model, bad field value"},
    "401": _ERR | {"description": "token missing or wrong"},
    "413": _ERR | {"description": "upload over the byte or pixel limit"},
    "415": _ERR | {"description": "not multipart/form-data"},
    "429": _ERR | {"description": "too many queued jobs for this client"},
}


def _op(summary: str, responses: dict, **extra: Any) -> dict:
    return {"summary": summary, "responses": responses, **extra}


def _form(props: dict, required: list[str]) -> dict:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": props, "required": required}}
        },
    }


_COMMON = {
    "tile": {
        "type": "integer",
        "minimum": 0,
        "description": "tile size in input pixels (0: none; default auto)",
    },
    "precision": {"type": "string", "enum": ["auto", "fp32", "fp16", "bf16"]},
}


def openapi_spec(root_path: str = "") -> dict[str, Any]:
    accepted = {
        "202": {
            "description": "queued",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "srlab serve",
            "version": "1",
            "description": "Upscale images, videos and animations with srlab's models, and compare models "
            "against a ground truth. Jobs run in the background; poll /api/jobs/{id} or follow its events.",
        },
        "servers": [{"url": root_path or "/"}],
        "paths": {
            "/api/models": {
                "get": _op(
                    "Models this server accepts",
                    {
                        "200": {
                            "description": "{models: [{name, kind, family, scale, speed, description, available}]}"
                        }
                    },
                )
            },
            "/api/jobs": {
                "get": _op("The 50 most recent jobs", {"200": {"description": "{jobs: [Job]}"}}),
                "post": _op(
                    "Upscale one image, video or animated image",
                    accepted | _UPLOAD_ERRORS,
                    requestBody=_form(
                        {
                            "file": {"type": "string", "format": "binary"},
                            "model": {"type": "string", "description": "a name from /api/models"},
                            "scale": {"type": "number", "description": "final scale (default: the model's)"},
                            "face": {"type": "string", "description": "accepted and ignored"},
                            **_COMMON,
                        },
                        ["file", "model"],
                    ),
                ),
            },
            "/api/compare": {
                "post": _op(
                    "Run several models on one image; with a ground truth, PSNR/SSIM (and LPIPS when available)",
                    accepted | _UPLOAD_ERRORS,
                    requestBody=_form(
                        {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "the low-resolution image",
                            },
                            "truth": {
                                "type": "string",
                                "format": "binary",
                                "description": "optional ground truth",
                            },
                            "models": {"type": "string", "description": "comma-separated names"},
                            "protocol": {"type": "string", "enum": ["standard", "study"]},
                            **_COMMON,
                        },
                        ["file", "models"],
                    ),
                ),
            },
            "/api/jobs/{id}": {
                "get": _op(
                    "Status of a job",
                    {
                        "200": {
                            "description": "Job",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
                        },
                        "404": _ERR,
                    },
                    parameters=_ID,
                ),
                "delete": _op(
                    "Delete a job and its files (stops it if running)",
                    {"200": {"description": "{id, deleted}"}, "404": _ERR},
                    parameters=_ID,
                ),
            },
            "/api/jobs/{id}/result": {
                "get": _op(
                    "The result: the upscaled file (its own content type; ?download=1 for an attachment), or "
                    "for a comparison the JSON list of outputs and metrics",
                    {
                        "200": {"description": "image/*, video/* or application/json"},
                        "409": _ERR | {"description": "not done yet, or failed"},
                        "404": _ERR,
                    },
                    parameters=_ID,
                ),
            },
            "/api/jobs/{id}/files/{name}": {
                "get": _op(
                    "A file of the job: its input, ground truth or an output named in its result",
                    {"200": {"description": "the file"}, "404": _ERR},
                    parameters=_ID
                    + [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                ),
            },
            "/api/jobs/{id}/events": {
                "get": _op(
                    "Server-sent events: one per change of status or progress (event = the status), until done or failed",
                    {"200": {"description": "text/event-stream"}, "404": _ERR},
                    parameters=_ID,
                ),
            },
            "/api/health": {
                "get": _op(
                    "Workers alive and job counts", {"200": {"description": "{workers, worker_pids, jobs}"}}
                )
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "srlab_token"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "Accepted": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
                },
                "Job": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"type": "string", "enum": ["upscale", "compare"]},
                        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                        "progress": {"type": "number", "minimum": 0, "maximum": 1},
                        "error": {"type": ["string", "null"]},
                        "note": {"type": ["string", "null"]},
                        "params": {"type": "object"},
                        "result": {"type": ["object", "null"]},
                    },
                },
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }
