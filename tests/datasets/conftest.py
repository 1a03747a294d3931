from __future__ import annotations

from typing import Any

import pytest

from apps.datasets.models import Dataset, Record, RetryItem
from apps.datasets.services import dataset_put

POSTS_FIELDS: dict[str, Any] = {
    "id": {"type": "string", "required": True},
    "score": {"type": "integer"},
    "over18": {"type": "boolean", "source": "over_18"},
    "subreddit": {"type": "string", "references": "subreddits.name"},
}


@pytest.fixture
def fast_retries(settings):
    settings.DATASETS_RETRY_BASE_SECONDS = 10.0
    settings.DATASETS_RETRY_MAX_DELAY_SECONDS = 3600.0
    settings.DATASETS_RETRY_MAX_ATTEMPTS = 4
    return settings


@pytest.fixture
def subreddits(db, fast_retries) -> Dataset:
    return dataset_put(
        name="subreddits",
        key_fields=["name"],
        fields={"name": {"type": "string", "required": True}, "title": {"type": "string"}},
        actor="test",
    )[0]


@pytest.fixture
def posts(subreddits) -> Dataset:
    return dataset_put(name="posts", key_fields=["id"], fields=POSTS_FIELDS, actor="test")[0]


def reconcile(dataset: Dataset, submitted: int) -> dict[str, int]:
    """records submitted = written (stored) + queued (pending) + dead, exactly."""
    from apps.datasets.selectors import record_count

    stored = Record.objects.filter(dataset=dataset).count()
    assert record_count(dataset) == stored  # the maintained count is exact
    pending = RetryItem.objects.filter(dataset=dataset, status="pending").count()
    dead = RetryItem.objects.filter(dataset=dataset, status="dead").count()
    assert submitted == stored + pending + dead, (submitted, stored, pending, dead)
    return {"stored": stored, "pending": pending, "dead": dead}
