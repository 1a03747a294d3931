"""gunicorn settings for production and benchmarks: sync workers, two per core by
default (WEB_CONCURRENCY overrides), keep-alive for scrapers' pooled connections."""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 30
timeout = 60
graceful_timeout = 20
max_requests = 20_000
max_requests_jitter = 2_000
accesslog = None


def child_exit(server, worker):
    # Prometheus multiprocess mode: forget the gauges of a worker that exited.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
