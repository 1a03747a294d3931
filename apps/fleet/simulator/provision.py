"""What a simulated fleet needs on the server, made through the API with an admin key
(the way an operator's tooling would): the proxies of the world, the two datasets, the
circuits of the two sites and the fetch rate-limit policy. Idempotent: a re-run updates."""

from __future__ import annotations

from typing import Any

from coreadmin_client import Client, ConflictError

from .world import World

PARENTS = "sim_subreddits"
SUBREDDITS = ("python", "django", "postgres", "redis", "scraping", "rust", "golang", "linux")
POSTS = "sim_posts"
RATE_LIMIT = "sim-fetch"
CIRCUIT_PREFIX = "sim-"

POSTS_DEFINITION: dict[str, Any] = {
    "key_fields": ["id"],
    "fields": {
        "id": {"type": "string", "required": True},
        "title": {"type": "string", "required": True},
        "score": {"type": "integer"},
        "over18": {"type": "boolean", "source": "over_18"},
        "subreddit": {"type": "string", "references": f"{PARENTS}.name"},
        "fetched_at": {"type": "datetime"},
    },
}
PARENTS_DEFINITION: dict[str, Any] = {
    "key_fields": ["name"],
    "fields": {"name": {"type": "string", "required": True}, "title": {"type": "string"}},
}


def circuit_name(site: str) -> str:
    return f"{CIRCUIT_PREFIX}{site}"


def provision(admin: Client, world: World, service: str) -> dict[str, Any]:
    """Returns what was made: proxy ids by world name, and the names of the rest."""
    known = {
        (p["host"], p["port"]): p
        for p in admin.request("GET", "/api/v1/proxies", params={"service": service})["items"]
    }
    ours: dict[str, int] = {}
    for name, proxy in world.proxies.items():
        row = known.get(("127.0.0.1", proxy.port))
        if row is None:
            try:
                row = admin.request(
                    "POST",
                    "/api/v1/proxies",
                    json={
                        "url": proxy.url,
                        "service": service,
                        "country": "US" if name.startswith("healthy") else "DE",
                        "tags": ["simulated", name],
                    },
                )
            except ConflictError:  # made by a racing run between our list and now
                continue
        elif row["status"] == "frozen":
            admin.request("PATCH", f"/api/v1/proxies/{row['id']}", json={"status": "active"})
        ours[name] = int(row["id"])
    # The service is the simulator's own: its proxies from an earlier run on other ports
    # point at nothing now, so they are frozen (an operator can delete them in the admin).
    for row in known.values():
        if row["id"] not in ours.values() and row["status"] != "frozen":
            admin.request("PATCH", f"/api/v1/proxies/{row['id']}", json={"status": "frozen"})
    admin.request("PUT", f"/api/v1/datasets/{PARENTS}", json=PARENTS_DEFINITION)
    admin.request("PUT", f"/api/v1/datasets/{POSTS}", json=POSTS_DEFINITION)
    # The subreddits every post may name; the scrapers add "late" ones as they go.
    admin.request(
        "POST",
        f"/api/v1/datasets/{PARENTS}/records",
        json={
            "batch_id": "sim-subreddits-v1",
            "records": [{"name": name, "title": f"r/{name}"} for name in SUBREDDITS],
        },
    )
    for site in world.sites:
        admin.request(
            "PUT",
            f"/api/v1/circuits/{circuit_name(site)}",
            json={
                "failure_threshold": 8,
                "recovery_timeout_ms": 5000,
                "half_open_max_calls": 1,
                "success_threshold": 2,
            },
        )
    admin.request(
        "PUT",
        f"/api/v1/ratelimits/{RATE_LIMIT}",
        json={"limit": 1200, "period_ms": 60000, "burst": 40},
    )
    return {
        "proxies": ours,
        "datasets": [PARENTS, POSTS],
        "circuits": [circuit_name(s) for s in world.sites],
        "rate_limit": RATE_LIMIT,
    }
