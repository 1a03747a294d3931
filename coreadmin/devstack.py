"""Entry point behind `make run` and `make test`.

``python -m coreadmin.devstack run [--data-dir DIR] [--port N] [--pg-port N]
[--redis-port N] [--no-reload]`` runs the whole service in the foreground: embedded
PostgreSQL and Redis under ``.data/`` when DATABASE_URL / REDIS_URL are unset, migrations,
a demo operator and API key (printed), then gunicorn, a Celery worker and Celery beat,
their output prefixed by name. Ctrl-C (SIGINT), SIGTERM or SIGHUP stop everything; if
this process is killed outright, the kernel stops the children (PR_SET_PDEATHSIG), and
the next run stops whatever a killed run left behind before starting.

``python -m coreadmin.devstack test [--data-dir DIR] -- [pytest args]`` runs the suite
against DATABASE_URL / REDIS_URL, or against embedded servers started for the run (data in
``.data/test``, or a temporary directory when another test run holds that one).
pytest's exit code is ours, so "no tests collected" (5) fails `make test`.

Why gunicorn and not runserver: it is the server production runs (same config file, same
gthread workers), its workers leave by themselves when their master dies (runserver's
autoreload child would be orphaned if its parent were killed), and ``--reload`` still
restarts workers on code changes. Static files come from Django's StaticFilesHandler
(what runserver uses) in ``coreadmin.devwsgi``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from coreadmin.embedded import (
    Child,
    EmbeddedPostgres,
    EmbeddedRedis,
    die_with_parent_self,
    free_port,
    kill_all,
    port_is_free,
    reap_leftovers,
    spawn,
)

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "coreadmin"
DEFAULT_WEB_PORT = 8000
T0 = time.monotonic()


class Stop(Exception):
    """SIGTERM or SIGHUP: stop like Ctrl-C does."""


def _raise_stop(signum: int, frame: Any) -> NoReturn:
    raise Stop(signal.Signals(signum).name)


def say(message: str) -> None:
    print(f"devstack | {time.monotonic() - T0:5.1f}s {message}", flush=True)


# --- data directory: one lock, one state file ---------------------------------------------


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[IO[str] | None]:
    """An exclusive flock on DIR/devstack.lock for as long as we run (None if another
    process holds it). The kernel drops a flock when its holder dies, kill -9 included, so
    a killed run never leaves a lock that blocks the next one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "devstack.lock").open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


class Stack:
    """The children of one run, recorded in DIR/devstack.json as they start so that the
    next run can stop what a killed one left behind."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.state_file = data_dir / "devstack.json"
        self.children: list[Child] = []
        self.info: dict[str, Any] = {}

    def reap_previous(self) -> None:
        try:
            previous = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return
        left = reap_leftovers(previous.get("children", []))
        if left:
            say("stopped what a killed run left behind: " + ", ".join(left))
        self.state_file.unlink(missing_ok=True)

    def add(self, child: Child) -> Child:
        self.children.append(child)
        self.save()
        return child

    def save(self) -> None:
        state = {"pid": os.getpid(), **self.info, "children": [c.record() for c in self.children]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def stop(self) -> None:
        """The simulated fleet first (it flushes to the web), then the applications (in
        parallel), then Redis and Postgres."""
        servers = [c for c in self.children if c.name in {"postgres", "redis"}]
        fleet = [c for c in self.children if c.name == "fleet"]
        apps = [c for c in self.children if c not in servers and c not in fleet]
        for phase in (fleet, apps, servers):
            try:
                stop_together(phase)
            except Exception as exc:  # never leave the servers running over a clean-up bug
                say(f"error while stopping {[c.name for c in phase]}: {exc!r}; killing them")
                kill_all([proc for child in phase for proc in child.tree()])
        self.state_file.unlink(missing_ok=True)


def stop_together(children: list[Child]) -> None:
    trees = [proc for child in children for proc in child.tree()]
    for child in children:
        if child.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(child.stop_signal)
    for child in children:
        deadline = time.monotonic() + child.stop_timeout
        while child.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    kill_all(trees)
    for child in children:
        child.stop(timeout=0)


# --- embedded services ------------------------------------------------------------------


def start_services(
    stack: Stack,
    env: dict[str, str],
    *,
    pg_port: int | None,
    redis_port: int | None,
    for_tests: bool = False,
) -> None:
    """Embedded Postgres / Redis for whichever of DATABASE_URL / REDIS_URL is unset."""
    if not env.get("DATABASE_URL"):
        pg = EmbeddedPostgres(stack.data_dir, pg_port or free_port(), fast_and_unsafe=for_tests)
        try:
            env["DATABASE_URL"] = pg.start(DATABASE_NAME)
        finally:
            if pg.child:
                stack.add(pg.child)
        stack.info["database_url"] = env["DATABASE_URL"]
        say(f"embedded postgres  {env['DATABASE_URL']}  (data {pg.pgdata})")
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(stack.data_dir, redis_port or free_port(), persistent=not for_tests)
        try:
            env["REDIS_URL"] = redis.start()
        finally:
            if redis.child:
                stack.add(redis.child)
        stack.info["redis_url"] = env["REDIS_URL"]
        say(f"embedded redis     {env['REDIS_URL']}  (data {stack.data_dir / 'redis'})")
    stack.save()


# --- run ----------------------------------------------------------------------------------


def prepare_database(env: dict[str, str], credentials: Path) -> str:
    """migrate, then ensure_demo, in one Django process (start-up costs seconds here)."""
    script = (
        "import django, sys; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', interactive=False, verbosity=1, stdout=sys.stderr);"
        "call_command('ensure_demo', credentials_file=sys.argv[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(credentials)],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "coreadmin.settings", **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate / ensure_demo failed:\n{result.stderr}{result.stdout}")
    applied = result.stderr.count("Applying ")
    if applied:
        say(f"applied {applied} migrations")
    return result.stdout


def app_commands(port: int, reload: bool) -> dict[str, list[str]]:
    python = sys.executable
    web = [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
    web += ["--workers", "2", "--graceful-timeout", "5"]
    web += ["--reload"] if reload else []
    celery = [python, "-m", "celery", "-A", "coreadmin"]
    return {
        "web": [*web, "coreadmin.devwsgi:application"],
        "worker": [*celery, "worker", "-l", "INFO", "--concurrency", "2", "-n", "devstack@%h"],
        "beat": [*celery, "beat", "-l", "INFO", "--schedule", os.devnull],
    }


SIM_PORT_BASE = 18600  # the simulated sites and proxies of `make demo`, if free
SIM_PORTS = 9  # two sites, seven proxies (apps/fleet/simulator/world.py)


def demo_fleet(
    env: dict[str, str], data_dir: Path, url: str, api_key: str, scrapers: int
) -> list[str]:
    """The simulate_fleet command of `make demo`, and the settings that make its world
    lively: health checks aimed at the simulated "news" site (so quarantined proxies come
    back), shorter ban cooldowns and check intervals. Variables already set win."""
    base = next(
        b
        for b in range(SIM_PORT_BASE, SIM_PORT_BASE + 1000, 10)
        if all(port_is_free(b + i) for i in range(SIM_PORTS))
    )
    env.setdefault("PROXY_CHECK_URL", f"http://127.0.0.1:{base}/")
    env.setdefault("PROXY_CHECK_EXPECT_TEXT", "coreadmin-target-ok")
    env.setdefault("PROXY_CHECK_INTERVAL_SECONDS", "60")
    env.setdefault("PROXY_BAN_BASE_SECONDS", "30")
    env.setdefault("PROXY_BAN_MAX_SECONDS", "300")
    manage = [sys.executable, str(ROOT / "manage.py"), "simulate_fleet", "--url", url]
    manage += ["--api-key", api_key, "--scrapers", str(scrapers), "--duration", "0"]
    (data_dir / "sim-report.txt").unlink(missing_ok=True)
    spool = data_dir / "sim-spool"  # what the fleet could not deliver yet, kept across runs
    manage += ["--report", str(data_dir / "sim-report.txt")]
    return [*manage, "--port-base", str(base), "--spool-dir", str(spool)]


def choose_web_port(requested: int) -> int:
    if requested == 0:
        return free_port()
    if port_is_free(requested):
        return requested
    port = free_port()
    say(f"port {requested} is taken; using {port} instead (set --port or PORT)")
    return port


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    with locked(data_dir) as lock:
        if lock is None:
            holder = (data_dir / "devstack.lock").read_text().strip()
            say(f"another devstack (pid {holder}) is using {data_dir}; stop it first")
            return 1
        # If whoever started us dies (make killed, terminal gone), stop cleanly too.
        die_with_parent_self(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGHUP, _raise_stop)
        stack = Stack(data_dir)
        try:
            return _run(stack, args)
        except (KeyboardInterrupt, Stop) as exc:
            say(f"stopping ({str(exc) or 'SIGINT'}): web, worker and beat, then the servers")
            return 0
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            say(f"could not start: {exc}")
            return 1
        finally:
            # A second Ctrl-C must not interrupt the clean-up.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stack.stop()
            say("stopped; nothing left running")
            if args.simulate and (data_dir / "sim-report.txt").exists():
                say(f"the simulated fleet's report: {data_dir / 'sim-report.txt'}")


def _run(stack: Stack, args: argparse.Namespace) -> int:
    stack.reap_previous()
    env = dict(os.environ)
    env.setdefault("COREADMIN_ENV", "development")
    env["PYTHONUNBUFFERED"] = "1"
    start_services(stack, env, pg_port=args.pg_port, redis_port=args.redis_port)

    say("migrating and ensuring the demo operator and key")
    credentials = stack.data_dir / "demo-credentials.txt"
    demo = prepare_database(env, credentials)
    saved = dict(line.split("=", 1) for line in credentials.read_text().splitlines() if "=" in line)

    metrics_dir = stack.data_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    port = choose_web_port(args.port)
    url = f"http://127.0.0.1:{port}"
    commands = app_commands(port, reload=not args.no_reload)
    if args.simulate:
        commands["fleet"] = demo_fleet(
            env, stack.data_dir, url, saved.get("api_key", ""), args.simulate
        )
    for name, command in commands.items():
        timeout = 60.0 if name == "fleet" else 10.0  # the fleet flushes what it holds
        stack.add(
            spawn(name, command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stop_timeout=timeout)
        )

    for line in demo.strip().splitlines():
        say(line)
    say(f"web: {url}/  (dashboard: log in as the demo operator; admin at {url}/admin/)")
    say(f"try: curl -H 'X-API-Key: {saved.get('api_key', '')}' {url}/api/v1/whoami")
    say("Ctrl-C stops everything")
    return supervise(stack.children)


def supervise(children: list[Child]) -> int:
    """Copy the applications' output, each line prefixed with its name, until one exits
    (an error: returns 1) or a signal stops us (raised from the handlers)."""
    selector = selectors.DefaultSelector()
    width = max(len(c.name) for c in children)
    partial: dict[str, bytes] = {}
    for child in children:
        if child.popen.stdout is not None:
            os.set_blocking(child.popen.stdout.fileno(), False)
            selector.register(child.popen.stdout, selectors.EVENT_READ, child)
    out = sys.stdout.buffer
    while True:
        for selected, _ in selector.select(timeout=1.0):
            child = selected.data
            chunk = os.read(selected.fd, 65536)
            if not chunk:
                selector.unregister(selected.fileobj)
                continue
            lines = (partial.pop(child.name, b"") + chunk).split(b"\n")
            partial[child.name] = lines.pop()
            prefix = child.name.ljust(width).encode() + b" | "
            out.write(b"".join(prefix + line + b"\n" for line in lines))
            out.flush()
        for child in children:
            if child.popen.poll() is not None:
                say(f"{child.name} exited with code {child.popen.returncode}; stopping")
                return 1


# --- test ---------------------------------------------------------------------------------


def test(args: argparse.Namespace, pytest_args: list[str]) -> int:
    os.environ["COREADMIN_ENV"] = "test"
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return run_pytest(pytest_args)
    # Embedded servers for this run: .data/test is reused (initdb once), unless another
    # test run holds it, in which case a temporary directory is used and removed.
    data_dir = Path(args.data_dir).resolve() / "test"
    with contextlib.ExitStack() as cleanup:
        lock = cleanup.enter_context(locked(data_dir))
        if lock is None:
            data_dir = Path(tempfile.mkdtemp(prefix="coreadmin-test-"))
            data_dir.chmod(0o755)
            cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
        stack = Stack(data_dir)
        cleanup.callback(stack.stop)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        die_with_parent_self(signal.SIGTERM)
        stack.reap_previous()
        env = dict(os.environ)
        start_services(stack, env, pg_port=None, redis_port=None, for_tests=True)
        os.environ.update(env)
        return run_pytest(pytest_args)
    return 1  # unreachable; keeps mypy's return analysis simple


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def run_pytest(pytest_args: list[str]) -> int:
    import pytest

    code = int(pytest.main(pytest_args))
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        say("no tests were collected: that is a failure (exit code 5)")
    return code


# --- command line -------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m coreadmin.devstack")
    sub = p.add_subparsers(dest="command", required=True)
    data_default = os.environ.get("COREADMIN_DATA_DIR", str(ROOT / ".data"))
    run_p = sub.add_parser("run", help="the whole service in the foreground (make run)")
    run_p.add_argument("--data-dir", default=data_default)
    run_p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or DEFAULT_WEB_PORT),
        help="web port on 127.0.0.1 (0: any free port; a taken port falls back to a free one)",
    )
    run_p.add_argument("--pg-port", type=int, default=_env_int("COREADMIN_PG_PORT"))
    run_p.add_argument("--redis-port", type=int, default=_env_int("COREADMIN_REDIS_PORT"))
    run_p.add_argument("--no-reload", action="store_true", help="no gunicorn --reload")
    run_p.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="also run a simulated fleet of N scrapers (make demo)",
    )
    test_p = sub.add_parser("test", help="the test suite (make test); pytest args after --")
    test_p.add_argument("--data-dir", default=data_default)
    return p


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    return int(raw) if raw else None


def main(argv: list[str]) -> int:
    own, rest = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :])
        if "--" in argv
        else (
            argv,
            [],
        )
    )
    args = parser().parse_args(own)
    if args.command == "test":
        return test(args, rest)
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
