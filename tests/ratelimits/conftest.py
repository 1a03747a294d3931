from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.ratelimits import services, stats


@pytest.fixture(autouse=True)
def fresh_ratelimit_caches() -> Iterator[None]:
    """Each test starts with no cached policy, no local bucket, and Redis reachable."""
    services.clear_policy_cache()
    services.clear_local_buckets()
    services.backoff.reset()
    stats.BACKGROUND = False  # the tests call stats.flush() themselves
    stats.reset()
    yield
    services.clear_policy_cache()
    services.clear_local_buckets()
    services.backoff.reset()
    stats.reset()
