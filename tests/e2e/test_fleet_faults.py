"""Faults during a simulated fleet: Redis restarted, Postgres restarted, the Celery worker
SIGKILLed, the web server restarted, one after the other while the scrapers run. After
it, per dataset: records submitted = stored + queued + dead, exactly. What degraded, and
for how long, is written to test-artifacts/fleet-faults.md."""

from __future__ import annotations

import collections
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from coreadmin_client import RetryPolicy

from apps.fleet.simulator import Plan, Report, simulate
from apps.fleet.simulator.world import World
from tests.e2e.faultstack import Availability, FaultStack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultStack]:
    monkeypatch.setenv("COREADMIN_SPOOL_DIR", str(tmp_path / "spool"))  # logs and spans
    data_dir = Path(tempfile.mkdtemp(prefix="coreadmin-faults-"))
    data_dir.chmod(0o755)  # the embedded postgres runs as another user when we are root
    s = FaultStack(data_dir)
    try:
        s.start()
        s.wait_for("ok")
        yield s
    except BaseException:
        print(s.logs())
        raise
    finally:
        s.stop()
        kept = ARTIFACTS / "fleet-faults-logs"  # the apps' own output, for the report
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        for log in data_dir.glob("*.log"):
            shutil.copy(log, kept / log.name)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_fleet_loses_nothing_through_restarts_and_kills(stack: FaultStack, tmp_path: Path):
    plan = Plan(
        scrapers=3,
        duration=0,
        pace=0.05,
        outage=None,
        heartbeat_interval=5.0,
        batch_interval=0.3,
        spool_dir=tmp_path / "spool",
        retry=RetryPolicy(max_attempts=3, backoff_base=0.1, backoff_max=0.5),
    )
    stop = threading.Event()
    result: list[Report] = []
    errors: list[BaseException] = []
    worlds: list[World] = []

    def run() -> None:
        try:
            result.append(
                simulate(plan, stack.url, stack.api_key, stop=stop, on_world=worlds.append)
            )
        except BaseException as exc:
            errors.append(exc)

    fleet = threading.Thread(target=run, daemon=True)
    timeline: list[tuple[str, float, float, float]] = []  # fault, start, end, recovered in
    notes: dict[str, str] = {}  # what /readyz cannot show, by fault

    with Availability(stack).running() as availability:
        fleet.start()

        def traffic(pages: int, timeout: float = 90.0) -> None:
            """Waits until the sites have served ``pages`` more pages (the fleet works)."""
            deadline = time.monotonic() + timeout
            while not worlds and time.monotonic() < deadline and not errors:
                time.sleep(0.05)
            assert worlds, errors or "the simulation did not start"
            start = sum(worlds[0].site_hits().values())
            while sum(worlds[0].site_hits().values()) < start + pages:
                assert time.monotonic() < deadline, f"fewer than {pages} pages in {timeout} s"
                time.sleep(0.05)

        traffic(30)

        def fault(name: str, act: Callable[[], object], restore: Callable[[], object]) -> None:
            began = time.monotonic()
            act()
            restore()
            stack.wait_for("ok", timeout=90)
            traffic(20)  # the fleet works again before the next fault
            timeline.append((name, began, time.monotonic(), time.monotonic() - began))

        def redis_down() -> None:
            assert stack.redis.child is not None
            stack.redis.child.stop()
            stack.wait_for("degraded", timeout=30)

        def postgres_down() -> None:
            assert stack.pg.child is not None
            stack.pg.child.stop()
            stack.wait_for("degraded", timeout=30)

        fault("redis restarted", redis_down, lambda: stack.redis.start())
        fault("postgres restarted", postgres_down, lambda: stack.pg.start("coreadmin"))
        killed_at: list[float] = []

        def worker_killed() -> None:
            killed_at.append(time.monotonic())
            stack.kill_app("worker")

        def worker_restarted() -> None:
            stack.start_app("worker")
            stack.wait_for_worker()
            notes["celery worker SIGKILL"] = (
                f"no worker for {time.monotonic() - killed_at[0]:.1f} s (SIGKILL until a "
                "restarted worker answered a ping): retries and health checks waited"
            )

        fault("celery worker SIGKILL", worker_killed, worker_restarted)
        fault(
            "web restarted", lambda: stack.stop_app("web"), lambda: stack.start_app("web") and None
        )
        stop.set()
        fleet.join(timeout=240)

    assert not errors, errors
    assert result, "the simulation did not finish"
    report = result[0]
    lines = ["# Faults during a simulated fleet", "", "```", report.text(), "```", ""]
    lines.append("| fault | /readyz not ok | states and checks seen failing | also |")
    lines.append("|---|---|---|---|")
    for name, began, end, _ in timeline:
        seconds, seen = availability.not_ok_between(began, end)
        also = notes.get(name, "-")
        lines.append(f"| {name} | {seconds:.1f} s | {', '.join(sorted(seen)) or '-'} | {also} |")
    web_log = (stack.data_dir / "web.log").read_text(errors="replace")
    answered = collections.Counter(re.findall(r"code=(5\d\d) ", web_log))
    lines += [
        "",
        "Server errors answered during the run: "
        + (", ".join(f"{n} x {code}" for code, n in sorted(answered.items())) or "none")
        + " (503 = retry later, with Retry-After; a 500 would be a bug).",
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fleet-faults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    assert report.exact, report.text()
    assert report.tally.pages["ok"] > 0
    posts = report.reconciliation()["sim_posts"]
    assert posts["submitted"] > 0 and posts["not delivered"] == 0
    # Each fault was seen: Redis and Postgres as failing checks, the web as down.
    failed = {name: availability.not_ok_between(b, e)[1] for name, b, e, _ in timeline}
    assert "redis" in failed["redis restarted"]
    assert "postgres" in failed["postgres restarted"]
    assert "down" in failed["web restarted"]
    assert "celery worker SIGKILL" in notes  # a restarted worker answered
    # An outage is a 503 with Retry-After wherever it strikes, never a 500.
    assert "500" not in answered and "Internal Server Error" not in web_log
