"""Runs a simulated fleet against a coreadmin server and reconciles what it wrote.

``simulate(plan, base_url, api_key)`` starts the world (sites and proxies), provisions
the server through the admin API, runs ``plan.scrapers`` scraper threads for
``plan.duration`` seconds (or until ``stop`` is set), flushes them (replaying anything
spooled while the server was away) and returns a ``Report``: pages by outcome, traffic
each site and proxy saw, each writer's record fates, and per dataset
``submitted == stored + queued + dead`` as the server counts them (differences against
the counts at the start, so an earlier run's data does not count).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from coreadmin_client import Client, CoreadminError

from .provision import PARENTS, POSTS, provision
from .scraper import Plan, Scraper, Tally
from .world import World, running_world

DATASETS = (PARENTS, POSTS)


def server_counts(admin: Client) -> dict[str, dict[str, int]]:
    """Per dataset: stored records, pending and dead retry items, discarded ones."""
    out: dict[str, dict[str, int]] = {}
    for name in DATASETS:
        stored = admin.request("GET", f"/api/v1/datasets/{name}/records", params={"limit": 1})
        counts = {"stored": int(stored["count"])}
        for status in ("pending", "dead"):
            body = admin.request(
                "GET", "/api/v1/retries", params={"dataset": name, "status": status, "limit": 1}
            )
            counts[status] = int(body["count"])
        resolved = admin.request(
            "GET", "/api/v1/retries", params={"dataset": name, "status": "resolved", "limit": 1000}
        )
        counts["discarded"] = sum(1 for i in resolved["items"] if i["resolution"] == "discarded")
        out[name] = counts
    return out


@dataclass
class Report:
    plan: Plan
    seconds: float
    tally: Tally
    site_hits: dict[str, int]
    proxy_requests: dict[str, int]
    client_counts: dict[str, dict[str, int]]  # dataset -> fate -> records (all writers)
    server_delta: dict[str, dict[str, int]]  # dataset -> stored/pending/dead/discarded
    notes: list[str] = field(default_factory=list)

    def reconciliation(self) -> dict[str, dict[str, Any]]:
        """Per dataset: submitted, what the server holds, and whether they are equal."""
        out: dict[str, dict[str, Any]] = {}
        for name in DATASETS:
            client = self.client_counts.get(name, {})
            server = self.server_delta.get(name, {})
            submitted = client.get("submitted", 0)
            accounted = sum(server.get(k, 0) for k in ("stored", "pending", "dead", "discarded"))
            unsent = sum(client.get(k, 0) for k in ("pending", "spooled", "rejected", "dead"))
            out[name] = {
                "submitted": submitted,
                **server,
                "not delivered": unsent,
                "exact": submitted == accounted and unsent == 0,
            }
        return out

    @property
    def exact(self) -> bool:
        return all(row["exact"] for row in self.reconciliation().values())

    def text(self) -> str:
        lines = [
            f"simulated fleet: {self.plan.scrapers} scrapers, {self.seconds:.0f} s",
            "pages: " + ", ".join(f"{k} {v}" for k, v in sorted(self.tally.pages.items())),
            "site hits: " + ", ".join(f"{k} {v}" for k, v in self.site_hits.items()),
            "proxy requests: " + ", ".join(f"{k} {v}" for k, v in self.proxy_requests.items()),
        ]
        if self.tally.errors:
            lines.append(
                "scraper errors: " + ", ".join(f"{k} {v}" for k, v in self.tally.errors.items())
            )
        lines.append("reconciliation (submitted = stored + queued + dead + discarded):")
        for name, row in self.reconciliation().items():
            verdict = "exact" if row["exact"] else "MISMATCH"
            lines.append(
                f"  {name}: submitted {row['submitted']} = stored {row.get('stored', 0)}"
                f" + queued {row.get('pending', 0)} + dead {row.get('dead', 0)}"
                f" + discarded {row.get('discarded', 0)}"
                f" (not delivered {row['not delivered']}): {verdict}"
            )
        lines.extend(self.notes)
        return "\n".join(lines)


def wait_ready(base_url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base_url} did not become ready in {timeout:.0f} s")
        time.sleep(0.5)


def simulate(
    plan: Plan,
    base_url: str,
    api_key: str,
    *,
    stop: threading.Event | None = None,
    port_base: int = 0,
    on_world: Callable[[World], None] | None = None,
    progress: Callable[[str], None] | None = None,
    settle_timeout: float = 120.0,
) -> Report:
    stop = stop or threading.Event()
    base_url = base_url.rstrip("/")
    wait_ready(base_url)
    with running_world(port_base) as world:
        with Client(base_url, api_key, retry=plan.retry, make_default=False) as admin:
            provision(admin, world, plan.service)
            before = server_counts(admin)
        if on_world is not None:
            on_world(world)
        started = time.monotonic()
        scrapers = [
            Scraper(i, plan, world, base_url, api_key, stop, started) for i in range(plan.scrapers)
        ]
        for scraper in scrapers:
            scraper.start()
        next_progress = started + 10.0
        while not stop.is_set():
            now = time.monotonic()
            if plan.duration and now - started >= plan.duration:
                break
            if not any(s.is_alive() for s in scrapers):  # each did its plan.pages
                break
            if progress is not None and now >= next_progress:
                pages = sum(sum(s.tally.pages.values()) for s in scrapers)
                progress(f"{now - started:.0f} s: {pages} pages, site hits {world.site_hits()}")
                next_progress = now + 10.0
            stop.wait(0.2)
        stop.set()
        seconds = time.monotonic() - started
        for scraper in scrapers:
            scraper.join(timeout=30)
        client_counts: dict[str, dict[str, int]] = {}
        tally = Tally()
        for scraper in scrapers:
            tally.add(scraper.tally)
            for name, counts in scraper.finish(settle_timeout).items():
                total = client_counts.setdefault(name, {})
                for fate, n in counts.items():
                    total[fate] = total.get(fate, 0) + n
        notes: list[str] = []
        with Client(base_url, api_key, retry=plan.retry, make_default=False) as admin:
            try:
                after = server_counts(admin)
            except CoreadminError as exc:
                after = before
                notes.append(f"could not read the server's counts: {exc}")
        delta = {
            name: {k: after[name][k] - before[name].get(k, 0) for k in after[name]}
            for name in DATASETS
        }
        return Report(
            plan=plan,
            seconds=seconds,
            tally=tally,
            site_hits=world.site_hits(),
            proxy_requests=world.proxy_requests(),
            client_counts=client_counts,
            server_delta=delta,
            notes=notes,
        )
