"""``srlab serve``: the web playground and job service (the ``serve`` extra: ``pip install 'srlab[serve]'``).

Binds 127.0.0.1:8765 by default. Any other address needs a token: ``--token`` or a random one, printed with
the URL (open that URL once; the page keeps the token in a cookie). Jobs and results live under ``--data``
(default: srlab's cache folder, ``serve/``) and survive restarts; finished jobs are deleted after
``--keep-days`` or when the folder passes ``--keep-gb`` (oldest first). The API is described at ``/docs``.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="web playground and job API (upscale, compare models) on a local port",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument(
        "--data", default=None, metavar="DIR", help="job store and results (default: <cache>/serve)"
    )
    p.add_argument(
        "--token", default=None, help="access token (required off loopback; default: a random one)"
    )
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default: 1 per GPU, else 1)"
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=64.0, metavar="MB", help="largest upload (default 64)"
    )
    p.add_argument(
        "--max-pixels",
        type=float,
        default=40.0,
        metavar="MPX",
        help="largest input image or video frame (default 40)",
    )
    p.add_argument(
        "--max-queued", type=int, default=16, metavar="N", help="queued+running jobs per client (default 16)"
    )
    p.add_argument(
        "--keep-days", type=float, default=7.0, help="delete finished jobs after this many days (0: never)"
    )
    p.add_argument(
        "--keep-gb",
        type=float,
        default=5.0,
        help="delete the oldest finished jobs past this size (0: no limit)",
    )
    p.add_argument(
        "--models-dir", default=None, metavar="DIR", help="also accept the weight files in DIR (as file:NAME)"
    )
    p.add_argument(
        "--root-path", default="", metavar="PATH", help="URL prefix when behind a reverse proxy (e.g. /srlab)"
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="URL",
        help="allow this origin (CORS is off by default)",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="proxies trusted for X-Forwarded-For (default 127.0.0.1)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    import secrets
    import sys
    from pathlib import Path

    from srlab.errors import ConfigError
    from srlab.serve.config import ServeConfig, default_data_dir, is_loopback

    try:
        import uvicorn

        from srlab.serve.app import create_app
    except ImportError as exc:
        raise ConfigError(
            f"srlab serve needs the serve extra ({exc.name} is missing): pip install 'srlab[serve]'"
        ) from None
    from srlab.serve.workers import default_devices

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, not {args.port}")
    token = args.token
    if token is None and not is_loopback(args.host):
        token = secrets.token_urlsafe(24)
    devices = default_devices()
    workers = args.workers if args.workers is not None else len(devices)
    data = Path(args.data).expanduser() if args.data else default_data_dir()
    cfg = ServeConfig(
        data_dir=data,
        token=token,
        workers=workers,
        devices=devices,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=int(args.max_pixels * 1e6),
        max_queued_per_client=args.max_queued,
        keep_days=args.keep_days,
        keep_bytes=int(args.keep_gb * 1024**3),
        models_dir=Path(args.models_dir) if args.models_dir else None,
        cors_origins=tuple(args.cors_origin),
    )
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--data {data}: cannot create it ({exc.strerror or exc}); choose another folder"
        ) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    app = create_app(cfg)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        root_path=args.root_path.rstrip("/"),
        access_log=False,  # uvicorn's lines carry the query string (?token=); the app logs paths only
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        sock = server.servers[0].sockets[0] if server.servers and server.servers[0].sockets else None
        port = sock.getsockname()[1] if sock is not None else args.port
        host = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{host}:{port}{args.root_path.rstrip('/')}/"
        if token:
            url += f"?token={token}"
        print(f"srlab serve: {url}  (data: {data}, {workers} worker(s) on {', '.join(devices)})", flush=True)

    import asyncio

    async def main() -> None:
        async def watch() -> None:
            while not server.started:
                await asyncio.sleep(0.05)
            announce()

        watcher = asyncio.create_task(watch())
        await server.serve()
        watcher.cancel()

    asyncio.run(main())
    return 0
