"""``srlab serve``: a web playground and job service for upscaling and comparing models.

- :mod:`~srlab.serve.config`: the settings (data folder, limits, token, workers) and their defaults;
- :mod:`~srlab.serve.store`: the SQLite job store (queued -> running -> done | failed) and the job folders;
- :mod:`~srlab.serve.catalogue`: which model names the server accepts, with their scale, family and speed;
- :mod:`~srlab.serve.uploads`: bounded multipart reading, content sniffing with srlab's image reader;
- :mod:`~srlab.serve.jobs`: what a worker does with a job (upscale, video/animation, compare + metrics);
- :mod:`~srlab.serve.workers`: the bounded pool of worker processes and its supervision;
- :mod:`~srlab.serve.security`: the token check and the client key used for the queue cap;
- :mod:`~srlab.serve.app`: the Starlette application (JSON API, server-sent events, the static page).

Only :mod:`~srlab.serve.app` and :mod:`~srlab.serve.uploads` (which the app alone imports) need the
``serve`` extra (Starlette, uvicorn, python-multipart); the rest is plain srlab, so the worker processes
import no web code.
"""

from __future__ import annotations
