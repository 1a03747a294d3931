from __future__ import annotations

import pytest

from apps.caching.cache import clear_all_l1


@pytest.fixture(autouse=True)
def fresh_l1_caches() -> None:
    """With the clock frozen, tile caches' L1 would never expire between tests."""
    clear_all_l1()
