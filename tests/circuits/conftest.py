from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.circuits import services


@pytest.fixture(autouse=True)
def fresh_circuit_caches() -> Iterator[None]:
    """Each test starts with no cached configuration and Redis considered reachable."""
    services.clear_config_cache()
    services.backoff.reset()
    yield
    services.clear_config_cache()
    services.backoff.reset()
