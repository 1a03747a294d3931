from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import ApiClient
from tests.logs.conftest import record

pytestmark = pytest.mark.django_db


def test_the_api_lists_lines_newest_first_with_filters(scraper_api, clock):
    scraper_api.post(
        "/api/v1/logs",
        {
            "records": [
                record(ts="2026-09-21T14:00:00Z", message="first"),
                record(ts="2026-09-21T14:05:00Z", level="error", message="second failed"),
                record(ts="2026-09-21T14:10:00Z", service="twitter", message="third"),
            ]
        },
    )
    body = scraper_api.get("/api/v1/logs").json()
    assert [i["message"] for i in body["items"]] == ["third", "second failed", "first"]
    assert body["count"] == 3
    item = body["items"][1]
    assert item["level"] == "error" and item["service"] == "reddit" and item["thread_id"] == "t-1"
    assert set(item) == {
        "id",
        "ts",
        "level",
        "logger",
        "message",
        "service",
        "thread_id",
        "context",
    }
    get = lambda **p: [i["message"] for i in scraper_api.get("/api/v1/logs", **p).json()["items"]]  # noqa: E731
    assert get(level="error") == ["second failed"]
    assert get(min_level="warning") == ["second failed"]
    assert get(service="twitter") == ["third"]
    assert get(q="failed") == ["second failed"]
    assert get(since="2026-09-21T14:04:00Z") == ["third", "second failed"]
    assert get(limit=1) == ["third"]
    first_id = scraper_api.get("/api/v1/logs").json()["items"][-1]["id"]
    assert get(after_id=first_id) == ["third", "second failed"]


def test_a_service_restricted_key_reads_only_its_service(make_api_key, scraper_api, clock):
    scraper_api.post(
        "/api/v1/logs",
        {"records": [record(message="mine"), record(service="twitter", message="theirs")]},
    )
    api = ApiClient(Client(), make_api_key("scraper", service="reddit", name="r"))
    assert [i["message"] for i in api.get("/api/v1/logs").json()["items"]] == ["mine"]
    assert api.get("/api/v1/logs", service="twitter").status_code == 403


def test_a_search_without_any_word_is_a_validation_error(scraper_api, clock):
    scraper_api.post("/api/v1/logs", {"records": [record(message="100% done")]})
    bad = scraper_api.get("/api/v1/logs", q="%")
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["fields"][0]["path"] == "q"
    assert [i["message"] for i in scraper_api.get("/api/v1/logs", q="100").json()["items"]] == [
        "100% done"
    ]
