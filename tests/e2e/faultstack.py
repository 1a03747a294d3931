"""A whole coreadmin of the test's own, to break on purpose: embedded PostgreSQL and
redis-server on free ports, gunicorn, a Celery worker and beat (the commands `make run`
uses), each a process this test started, so stopping and restarting them touches nothing
of the machine's shared services. ``Availability`` polls /readyz to tell, afterwards, what
degraded and for how long."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coreadmin.devstack import ROOT, app_commands, prepare_database
from coreadmin.embedded import Child, EmbeddedPostgres, EmbeddedRedis, free_port, spawn


class FaultStack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pg = EmbeddedPostgres(data_dir, free_port(), fast_and_unsafe=True)
        self.redis = EmbeddedRedis(data_dir, free_port(), persistent=False)
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.apps: dict[str, Child] = {}
        self.env: dict[str, str] = {}
        self.api_key = ""
        # Every /readyz answer seen, by anyone: (monotonic time, state, failing checks).
        self.observations: list[tuple[float, str, tuple[str, ...]]] = []

    def start(self) -> None:
        database_url = self.pg.start("coreadmin")
        redis_url = self.redis.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
        metrics = self.data_dir / "prometheus"
        metrics.mkdir(exist_ok=True)
        env |= {
            "COREADMIN_ENV": "development",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }
        self.env = env
        credentials = self.data_dir / "credentials.txt"
        prepare_database(env, credentials)
        saved = dict(line.split("=", 1) for line in credentials.read_text().splitlines())
        self.api_key = saved["api_key"]
        for name in ("web", "worker", "beat"):
            self.start_app(name)

    def start_app(self, name: str) -> Child:
        command = app_commands(self.web_port, reload=False)[name]
        if name == "worker":  # one pool process: two cores are shared by all of this
            command = [*command[: command.index("--concurrency")], "--concurrency", "1"]
        log = (self.data_dir / f"{name}.log").open("ab")
        child = spawn(name, command, env=self.env, cwd=ROOT, stdout=log)
        log.close()
        self.apps[name] = child
        return child

    def stop_app(self, name: str) -> None:
        self.apps.pop(name).stop()

    def kill_app(self, name: str) -> None:
        """SIGKILL to the app's whole process group (a Celery worker and its pool)."""
        child = self.apps.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.popen.wait(10)

    def stop(self) -> None:
        for name in list(self.apps):
            with contextlib.suppress(Exception):
                self.stop_app(name)
        for server in (self.redis, self.pg):
            if server.child is not None:
                server.child.stop()

    def ready(self, timeout: float = 2.0) -> tuple[str, dict[str, str]]:
        """("ok" | "degraded" | "down", the checks /readyz reported)."""
        try:
            response = httpx.get(f"{self.url}/readyz", timeout=timeout)
            checks = dict(response.json().get("checks", {}))
            state = "ok" if response.status_code == 200 else "degraded"
        except (httpx.HTTPError, ValueError):
            state, checks = "down", {}
        failing = tuple(sorted(k for k, v in checks.items() if v != "ok"))
        self.observations.append((time.monotonic(), state, failing))
        return state, checks

    def wait_for(self, want: str, timeout: float = 60.0) -> float:
        """Polls /readyz until it says ``want``; returns the seconds it took."""
        started = time.monotonic()
        while self.ready()[0] != want:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"/readyz did not become {want!r} in {timeout} s")
            time.sleep(0.1)
        return time.monotonic() - started

    def wait_for_worker(self, timeout: float = 90.0) -> float:
        """Broadcasts Celery pings through the stack's broker until a worker answers;
        returns the seconds it took (readiness does not cover the worker, so its outage
        is measured here)."""
        from celery import Celery

        prefix = self.env.get("REDIS_KEY_PREFIX") or "ca:"
        app = Celery(
            "faultstack-probe",
            broker=self.env["REDIS_URL"],
            broker_transport_options={"global_keyprefix": prefix + "celery:"},
        )
        started = time.monotonic()
        try:
            while not app.control.ping(timeout=0.5):
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"no Celery worker answered in {timeout} s")
        finally:
            app.close()
        return time.monotonic() - started

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
            for p in sorted(self.data_dir.glob("*.log"))
        )


@dataclass
class Availability:
    """Samples /readyz every ``every`` seconds in a thread, beside the answers the test's
    own waits saw (all in ``stack.observations``)."""

    stack: FaultStack
    every: float = 0.1
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextlib.contextmanager
    def running(self) -> Iterator[Availability]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.stack.ready(timeout=1.0)
            self._stop.wait(self.every)

    def not_ok_between(self, begin: float, end: float) -> tuple[float, set[str]]:
        """Seconds /readyz was not ok in [begin, end], and every state/check seen failing."""
        window = sorted(s for s in self.stack.observations if begin <= s[0] <= end)
        seconds = 0.0
        seen: set[str] = set()
        for (t, state, failing), nxt in itertools.pairwise(window):
            if state != "ok":
                seconds += nxt[0] - t
                seen.add(state)
                seen.update(failing)
        return seconds, seen
