"""`make run` and `make test` as a newcomer gets them: DATABASE_URL and REDIS_URL unset, so
the embedded Postgres and Redis start (here on non-default ports, in a temporary data
directory). These tests start real processes and check, with psutil, that none survives."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from coreadmin.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def newcomer_env(**extra: str) -> dict[str, str]:
    """The environment of someone who has set nothing: no URLs, no pytest leftovers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "COREADMIN_ENV", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith(("PYTEST_", "COREADMIN_"))
    }
    return {**env, **extra}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: under root the embedded Postgres runs as another user, which
    # must be able to traverse to its data directory (pytest's base directory is 0700).
    path = Path(tempfile.mkdtemp(prefix="coreadmin-devstack-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    output: Path
    url: str
    api_key: str
    password: str

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def start_stack(
    data_dir: Path, pg_port: int, redis_port: int, timeout: float = 180
) -> RunningStack:
    output = data_dir / f"run-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "coreadmin.devstack", "run", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--pg-port", str(pg_port), "--redis-port", str(redis_port)]
    command += ["--no-reload"]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=newcomer_env(), stdout=sink, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while "Ctrl-C stops everything" not in output.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the stack did not start:\n" + output.read_text(errors="replace")[-4000:])
        time.sleep(0.2)
    text = output.read_text(errors="replace")
    stack = RunningStack(
        process=process,
        output=output,
        url=re.search(r"web: (http://127\.0\.0\.1:\d+)/", text).group(1),  # type: ignore[union-attr]
        api_key=re.search(r"Demo admin API key: (cak_\S+)", text).group(1),  # type: ignore[union-attr]
        password=re.search(r"password=(\S+)", text).group(1),  # type: ignore[union-attr]
    )
    wait_ready(stack)
    return stack


def wait_ready(stack: RunningStack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            healthz = httpx.get(stack.url + "/healthz", timeout=5)
            readyz = httpx.get(stack.url + "/readyz", timeout=5)
            if healthz.status_code == 200 and readyz.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("/healthz and /readyz never both answered 200:\n" + stack.log()[-4000:])
        time.sleep(0.2)


def wait_for_worker_heartbeat(redis_port: int, timeout: float = 60) -> None:
    """The worker's first heartbeat went through the broker: worker and Redis work."""
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    deadline = time.monotonic() + timeout
    while not client.exists("ca:worker:heartbeat"):
        assert time.monotonic() < deadline, "no worker heartbeat in Redis"
        time.sleep(0.2)


def assert_demo_operator_can_log_in(stack: RunningStack) -> None:
    """The printed password opens the dashboard, static files included."""
    with httpx.Client(base_url=stack.url, timeout=10) as browser:
        form = browser.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        response = browser.post(
            "/login/",
            data={
                "username": "operator",
                "password": stack.password,
                "csrfmiddlewaretoken": token.group(1),
            },
        )
        assert response.status_code == 302, response.text[:500]
        overview = browser.get(response.headers["location"])
        assert overview.status_code == 200
        assert "operator" in overview.text
        assert browser.get("/static/css/app.css").status_code == 200


def whoami(stack: RunningStack) -> httpx.Response:
    return httpx.get(stack.url + "/api/v1/whoami", headers={"X-API-Key": stack.api_key})


def assert_all_gone(processes: list[psutil.Process], timeout: float = 30) -> None:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    survivors = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"still running: {[(p.pid, p.cmdline()) for p in survivors]}"


def test_make_run_serves_survives_kill_9_keeps_its_data_and_leaves_nothing_behind(data_dir):
    pg_port, redis_port = free_port(), free_port()

    # First run: a fresh data directory gets a cluster, Redis, and a demo key that works.
    first = start_stack(data_dir, pg_port, redis_port)
    assert f"127.0.0.1:{pg_port}" in first.log()
    assert f"127.0.0.1:{redis_port}" in first.log()
    response = whoami(first)
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "demo", "scope": "admin", "service": None}
    redis.Redis(host="127.0.0.1", port=redis_port).set("ca:devstack-smoke", "kept", ex=3600)
    wait_for_worker_heartbeat(redis_port)
    processes = first.tree()
    names = " ".join(" ".join(p.cmdline()) for p in processes)
    for expected in ("postgres", "redis-server", "gunicorn", "celery", "worker", "beat"):
        assert expected in names

    # kill -9 of the supervisor: the kernel stops its children (parent-death signal).
    first.process.kill()
    first.process.wait(10)
    assert_all_gone(processes)
    assert (data_dir / "devstack.json").exists()  # the state a killed run leaves behind

    # Second run: not blocked by that state; the same key works (the database kept it),
    # and Redis kept its key.
    second = start_stack(data_dir, pg_port, redis_port)
    assert (second.api_key, second.password) == (first.api_key, first.password)
    assert whoami(second).status_code == 200
    assert_demo_operator_can_log_in(second)
    assert redis.Redis(host="127.0.0.1", port=redis_port).get("ca:devstack-smoke") == b"kept"

    # Ctrl-C: everything stops, cleanly, and the state file goes with it.
    processes = second.tree()
    second.process.send_signal(signal.SIGINT)
    assert second.process.wait(60) == 0, second.log()[-3000:]
    assert_all_gone(processes)
    assert not (data_dir / "devstack.json").exists()
    assert "stopped; nothing left running" in second.log()


def run_devstack_test(data_dir: Path, *pytest_args: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "coreadmin.devstack", "test", "--data-dir", str(data_dir)]
    return subprocess.run(
        [*command, "--", "-p", "no:xdist", "-q", *pytest_args],
        cwd=ROOT,
        env=newcomer_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_test_without_urls_runs_the_suite_on_embedded_servers(data_dir):
    result = run_devstack_test(data_dir, "tests/core/test_health.py", "-k", "readyz_is_200")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    assert "embedded postgres" in result.stdout
    assert "embedded redis" in result.stdout
    assert not (data_dir / "test" / "devstack.json").exists()


def test_make_test_fails_when_no_tests_are_collected(data_dir):
    urls = {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}
    result = run_devstack_test(data_dir, "tests/core/test_health.py", "-k", "no_such_test", **urls)
    assert result.returncode == 5
    assert "no tests were collected" in result.stdout
