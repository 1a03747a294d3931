from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.datasets.models import Batch, Dataset, Record, RetryItem

from .conftest import POSTS_FIELDS, reconcile

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/posts/records"


def post(api, records, batch_id=None, url=URL):
    body = {"records": records}
    if batch_id is not None:
        body["batch_id"] = batch_id
    return api.post(url, body)


def test_an_admin_defines_a_dataset_and_a_second_put_replaces_it(admin_api, subreddits):
    body = {"key_fields": ["id"], "fields": POSTS_FIELDS}
    created = admin_api.put("/api/v1/datasets/posts", body)
    assert created.status_code == 201, created.json()
    assert created.json()["fields"]["over18"] == {
        "type": "boolean",
        "required": False,
        "source": "over_18",
    }
    again = admin_api.put("/api/v1/datasets/posts", body)
    assert again.status_code == 200
    assert AuditEntry.objects.filter(target="posts").count() == 2


def test_a_scraper_key_cannot_define_datasets(scraper_api):
    response = scraper_api.put("/api/v1/datasets/posts", {"key_fields": ["id"], "fields": {}})
    assert response.status_code == 403


def test_a_bad_definition_is_a_422_naming_each_field(admin_api):
    response = admin_api.put(
        "/api/v1/datasets/posts",
        {"key_fields": ["missing"], "fields": {"id": {"type": "string"}}},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == [
        {"path": "key_fields.0", "reason": "'missing' is not a field"}
    ]


def test_key_fields_cannot_change_once_a_dataset_has_records(admin_api, posts, scraper_api):
    post(scraper_api, [{"id": "a"}])
    fields = {**POSTS_FIELDS, "other": {"type": "string"}}
    response = admin_api.put("/api/v1/datasets/posts", {"key_fields": ["other"], "fields": fields})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "definition_conflict"


def test_a_batch_is_upserted_by_key_and_counted(scraper_api, posts, subreddits):
    post(scraper_api, [{"name": "python"}], url="/api/v1/datasets/subreddits/records")
    first = post(
        scraper_api,
        [
            {"id": "p1", "score": "10", "over_18": False, "subreddit": "python"},
            {"id": "p2", "score": 5},
        ],
    )
    assert first.status_code == 200
    assert first.json() == {
        "batch_id": None,
        "received": 2,
        "written": 2,
        "queued": 0,
        "failures": [],
    }
    again = post(scraper_api, [{"id": "p1", "score": 11, "over_18": True}])
    assert again.json()["written"] == 1
    stored = Record.objects.get(dataset=posts, key={"id": "p1"})
    assert stored.data == {"id": "p1", "score": 11, "over18": True}
    listed = scraper_api.get(URL).json()
    assert listed["count"] == 2
    assert [item["key"] for item in listed["items"]] == [{"id": "p1"}, {"id": "p2"}]
    assert listed["items"][0]["data"]["over18"] is True


def test_records_are_paged_with_the_next_cursor(scraper_api, posts):
    post(scraper_api, [{"id": f"r{i:02d}"} for i in range(25)])
    seen = []
    after = ""
    while True:
        page = scraper_api.get(URL, limit=10, after=after).json()
        assert page["count"] == 25
        seen += [item["key"]["id"] for item in page["items"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == [f"r{i:02d}" for i in range(25)]


def test_one_bad_record_does_not_fail_its_batch_and_is_queued(scraper_api, posts):
    records = [{"id": f"ok{i}", "score": i} for i in range(10)]
    records[3] = {"id": "bad", "score": "many"}
    records[6] = {"id": "orphan", "subreddit": "nowhere"}
    records[8] = {"id": "typo", "over18": True}
    response = post(scraper_api, records)
    body = response.json()
    assert response.status_code == 200
    assert (body["received"], body["written"], body["queued"]) == (10, 7, 3)
    assert [(f["index"], f["code"]) for f in body["failures"]] == [
        (3, "validation_error"),
        (6, "missing_reference"),
        (8, "validation_error"),
    ]
    assert "score: expected an integer, got 'many'" in body["failures"][0]["message"]
    assert body["failures"][0]["fields"] == [
        {"path": "score", "reason": "expected an integer, got 'many'"}
    ]
    assert "send it as 'over_18'" in body["failures"][2]["message"]
    queued = RetryItem.objects.order_by("batch_index")
    assert [i.record for i in queued] == [records[3], records[6], records[8]]
    assert all(i.status == "pending" and i.attempts == 1 for i in queued)
    assert reconcile(posts, 10) == {"stored": 7, "pending": 3, "dead": 0}


def test_a_record_the_database_refuses_is_isolated_as_a_write_error(scraper_api, posts):
    import base64
    import os

    huge = base64.b64encode(os.urandom(9000)).decode()  # too big for the key index
    long_but_compressible = "k" * 3000  # as long, but fits the index once compressed
    records = [{"id": f"ok{i}"} for i in range(9)] + [{"id": huge}, {"id": long_but_compressible}]
    body = post(scraper_api, records).json()
    assert (body["written"], body["queued"]) == (10, 1)
    assert body["failures"][0]["index"] == 9
    assert body["failures"][0]["code"] == "write_error"
    assert "index row" in body["failures"][0]["message"]
    assert reconcile(posts, 11)["stored"] == 10
    assert Record.objects.filter(dataset=posts, key={"id": long_but_compressible}).exists()


def test_the_same_key_twice_in_a_batch_keeps_the_last(scraper_api, posts):
    body = post(scraper_api, [{"id": "a", "score": 1}, {"id": "a", "score": 2}]).json()
    assert body["written"] == 2
    assert Record.objects.get(dataset=posts).data["score"] == 2


def test_a_repeated_batch_id_replays_the_first_response_and_writes_nothing(scraper_api, posts):
    records = [{"id": "a", "score": 1}, {"id": "b", "score": "x"}]
    first = post(scraper_api, records, batch_id="b-1")
    Record.objects.filter(dataset=posts).update(data={"id": "a", "score": 99})
    second = post(scraper_api, [dict(r) for r in records], batch_id="b-1")
    assert second.status_code == 200
    assert second.json() == first.json()
    assert first.json()["batch_id"] == "b-1"
    assert Record.objects.get(dataset=posts).data["score"] == 99  # not written again
    assert RetryItem.objects.count() == 1
    assert Batch.objects.count() == 1


def test_the_same_batch_id_with_different_records_is_a_409(scraper_api, posts):
    post(scraper_api, [{"id": "a"}], batch_id="b-2")
    response = post(scraper_api, [{"id": "b"}], batch_id="b-2")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "batch_id_conflict"
    assert not Record.objects.filter(key={"id": "b"}).exists()


def test_batch_ids_are_per_dataset(scraper_api, posts, subreddits):
    post(scraper_api, [{"id": "a"}], batch_id="same")
    other = post(
        scraper_api, [{"name": "x"}], batch_id="same", url="/api/v1/datasets/subreddits/records"
    )
    assert other.status_code == 200 and other.json()["written"] == 1


def test_an_unknown_dataset_is_a_404(scraper_api, db):
    response = post(scraper_api, [{"id": "a"}], url="/api/v1/datasets/nope/records")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"batch_id": "x"}', "records"),
        (b'{"records": {}}', "records"),
        (b'{"records": [], "batch_id": 7}', "batch_id"),
        (b'{"records": [], "extra": 1}', "extra"),
    ],
)
def test_a_malformed_body_is_a_422(scraper_api, posts, body, path):
    response = scraper_api.post(URL, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["fields"][0]["path"] == path
    assert not Record.objects.exists()


def test_too_many_records_is_a_413(scraper_api, posts, settings):
    settings.DATASETS_MAX_BATCH_RECORDS = 3
    response = post(scraper_api, [{"id": str(i)} for i in range(4)])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["details"]["limit_records"] == 3
    assert not Record.objects.exists()


def test_too_many_bytes_is_a_413_before_parsing(scraper_api, posts, settings):
    settings.DATASETS_MAX_BODY_BYTES = 2048
    response = scraper_api.post(URL, b'{"records": [' + b" " * 3000 + b"]}")
    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit_bytes"] == 2048


def test_records_of_a_non_object_are_validation_failures_not_request_errors(scraper_api, posts):
    body = post(scraper_api, [{"id": "a"}, 5, "x"]).json()
    assert (body["written"], body["queued"]) == (1, 2)
    assert {f["code"] for f in body["failures"]} == {"validation_error"}


def test_datasets_are_listed_and_read(scraper_api, posts):
    names = [d["name"] for d in scraper_api.get("/api/v1/datasets").json()["items"]]
    assert names == ["posts", "subreddits"]
    assert scraper_api.get("/api/v1/datasets/posts").json()["key_fields"] == ["id"]
    assert scraper_api.get("/api/v1/datasets/nope").status_code == 404


def test_nothing_is_written_without_a_key(anon_api, posts):
    assert post(anon_api, [{"id": "a"}]).status_code == 401
    assert not Dataset.objects.filter(name="x").exists()


def test_a_record_with_nul_characters_is_queued_with_them_replaced(scraper_api, posts):
    body = post(scraper_api, [{"id": "ok"}, {"id": "n\x00ul", "score": 1}]).json()
    assert (body["written"], body["queued"]) == (1, 1)
    assert "NUL" in body["failures"][0]["message"]
    assert RetryItem.objects.get().record == {"id": "n\ufffdul", "score": 1}


def test_settings_refuse_a_batch_id_retention_under_24_hours():
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "coreadmin.settings",
            "COREADMIN_ENV": "development",
            "DATASETS_BATCH_ID_RETENTION_HOURS": "12",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DATASETS_BATCH_ID_RETENTION_HOURS must be at least 24" in result.stderr


def test_written_and_queued_records_are_counted_in_metrics(scraper_api, posts, client):
    post(scraper_api, [{"id": "a"}, {"id": "b"}, {"id": "c", "score": "x"}])
    text = client.get("/metrics").content.decode()
    assert 'coreadmin_dataset_records_total{dataset="posts",outcome="written"}' in text
    assert 'coreadmin_dataset_records_total{dataset="posts",outcome="queued"}' in text


def test_the_record_count_stays_exact_through_inserts_updates_failures_and_compaction(
    scraper_api, posts
):
    from apps.datasets.models import RecordCount
    from apps.datasets.selectors import record_count
    from apps.datasets.tasks import compact_counts

    post(scraper_api, [{"id": "a"}, {"id": "b"}, {"id": "c", "score": "x"}])
    post(scraper_api, [{"id": "a", "score": 1}, {"id": "d"}])  # one update, one insert
    post(scraper_api, [{"id": "a"}, {"id": "a"}])  # duplicate key in a batch
    assert record_count(posts) == 3 == Record.objects.filter(dataset=posts).count()
    assert RecordCount.objects.filter(dataset=posts).count() == 3
    assert compact_counts.apply().get() == 1
    assert list(RecordCount.objects.filter(dataset=posts).values_list("delta", flat=True)) == [3]
    assert scraper_api.get(URL).json()["count"] == 3
    reconcile(posts, 4)


def test_a_typo_in_a_field_definition_is_refused_not_ignored(admin_api, db):
    response = admin_api.put(
        "/api/v1/datasets/posts",
        {"key_fields": ["id"], "fields": {"id": {"type": "string", "requred": True}}},
    )
    assert response.status_code == 422
    paths = [f["path"] for f in response.json()["error"]["details"]["fields"]]
    assert paths == ["fields.id.requred"]
