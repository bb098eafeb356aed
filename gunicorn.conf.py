"""gunicorn settings read automatically when gunicorn starts in this folder.

Each worker loads the analysis as it starts, not on its first request, so no user waits
the few seconds that takes (``app.LazyServer.load``). Workers default to 2; set
``--workers`` or ``WEB_CONCURRENCY`` for more (about one per core: the callbacks are CPU-bound).
"""

import os

bind = os.environ.get("MINEWATCH_BIND", "127.0.0.1:8050")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))


def post_worker_init(worker):
    from app import server

    server.load()
