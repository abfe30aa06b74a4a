"""Access control: the token gate (an ASGI middleware) and the client key the queue cap counts by.

With a token, every request must carry it: ``Authorization: Bearer T``, the ``X-Srlab-Token`` header, or
the ``srlab_token`` cookie. Opening the page once as ``/?token=T`` sets that cookie (HttpOnly,
SameSite=Strict) and redirects to the same URL without the token, so it does not stay in the address bar
or the browser history. Tokens are compared with :func:`hmac.compare_digest` (constant time) and never
logged: the server writes its own access lines, with the path only (no query string, no headers).
"""

from __future__ import annotations

import hmac
import logging
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from srlab import serialize

__all__ = ["COOKIE", "AccessLog", "TokenGate", "client_key"]

COOKIE = "srlab_token"
log = logging.getLogger("srlab.serve")


def client_key(scope) -> str:
    """Who is asking, for the per-client queue cap: the peer address (behind a reverse proxy uvicorn puts
    the forwarded address here when the proxy is trusted, ``--forwarded-allow-ips``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _send_json(send, status: int, body: dict, extra: list | None = None) -> None:
    data = serialize.dumps(body, indent=None).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": data})


class TokenGate:
    """Refuse (401) every HTTP request without the token; ``token=None`` lets everything through."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        h = _headers(scope)
        auth = h.get("authorization", "")
        candidates = [
            auth[7:].strip() if auth.lower().startswith("bearer ") else None,
            h.get("x-srlab-token"),
        ]
        if "cookie" in h:
            jar = SimpleCookie()
            try:
                jar.load(h["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header is just no token
                jar = SimpleCookie()
            candidates.append(jar[COOKIE].value if COOKIE in jar else None)
        if any(self._ok(c) for c in candidates):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if scope["method"] == "GET" and self._ok(given):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            root, path = scope.get("root_path", ""), scope["path"]
            if not path.startswith(
                root
            ):  # uvicorn puts --root-path in front of the path; other servers may not
                path = root + path
            where = path + (f"?{rest}" if rest else "")
            cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", where.encode()),
                        (b"set-cookie", cookie.encode()),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await _send_json(
            send,
            401,
            {
                "error": "this server needs its token: open the URL it printed (…/?token=…), or send "
                "'Authorization: Bearer TOKEN'"
            },
            [(b"www-authenticate", b"Bearer")],
        )


class AccessLog:
    """One line per request: method, path (never the query string, which may hold the token), status, time."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - t0) * 1000
            log.info("%s %s %s %.0f ms %s", client_key(scope), scope["method"], scope["path"], ms, status[0])
