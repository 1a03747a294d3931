"""The process plumbing behind `make run`, on cheap processes of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from coreadmin.devstack import locked
from coreadmin.embedded import _clear_stale_postmaster_pid, reap_leftovers, spawn

ROOT = Path(__file__).resolve().parents[2]


def test_a_spawned_child_has_its_own_process_group_and_stops_with_its_tree():
    child = spawn("sleeper", [sys.executable, "-c", "import os, time; os.fork(); time.sleep(60)"])
    time.sleep(0.5)
    tree = child.tree()
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
    assert len(tree) == 2
    child.stop(timeout=5)
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive


def test_leftovers_of_a_killed_run_are_stopped_but_a_recycled_pid_is_not_touched():
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    handle = psutil.Process(leftover.pid)
    record = handle.create_time()
    me = psutil.Process(os.getpid())
    stopped = reap_leftovers(
        [
            {"name": "old-worker", "pid": leftover.pid, "create_time": record},
            # Same pid as a live process, another start time: a recycled pid, not ours.
            {"name": "recycled", "pid": me.pid, "create_time": me.create_time() - 100},
        ],
        timeout=5,
    )
    assert stopped == ["old-worker"]
    assert not handle.is_running()  # reaped already (it was our child here)
    assert me.is_running()


def test_a_postmaster_pid_naming_no_running_postgres_is_removed(tmp_path):
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n/data\n")  # pytest, not postgres
    _clear_stale_postmaster_pid(tmp_path)
    assert not (tmp_path / "postmaster.pid").exists()


def test_a_second_run_on_the_same_data_directory_is_refused_while_the_first_runs(tmp_path):
    with locked(tmp_path) as lock:
        assert lock is not None
        result = subprocess.run(
            [sys.executable, "-m", "coreadmin.devstack", "run", "--data-dir", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"another devstack (pid {os.getpid()})" in result.stdout
    with locked(tmp_path) as lock:  # released with its holder
        assert lock is not None
