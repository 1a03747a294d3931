from __future__ import annotations

import pytest
from django.test import override_settings

from apps.fleet.models import ScraperInstance, ServiceConfiguration
from apps.fleet.selectors import ServiceConfig, clear_service_config_cache, service_config
from apps.fleet.services import fleet_forget_silent
from coreadmin.redaction import REDACTED
from tests.fleet.helpers import configure_service

pytestmark = pytest.mark.django_db

URL = "/api/v1/fleet/heartbeat"


@pytest.fixture(autouse=True)
def fresh_config_cache():
    clear_service_config_cache()
    yield
    clear_service_config_cache()


def beat(api, **fields):
    body = {"instance": "host-1:4242", "service": "reddit", "version": "1.4.0", "memory_mb": 312.5}
    body.update(fields)
    return api.post(URL, body)


def test_a_heartbeat_of_an_unconfigured_service_answers_with_the_settings_defaults(
    scraper_api, clock
):
    response = beat(scraper_api)
    assert response.status_code == 200
    assert response.json()["config"] == {
        "batch_size": 500,
        "rate_limit_policies": [],
        "max_workers": 4,
        "retry_attempts": 3,
        "span_sample_rate": 0.10,
        "min_log_level": "info",
    }
    assert response.json()["stale_after_s"] == 90


def test_a_heartbeat_records_the_instance_and_the_next_one_updates_it(scraper_api, clock):
    beat(scraper_api)
    first = ScraperInstance.objects.get(service="reddit", instance="host-1:4242")
    clock.advance(30)
    beat(scraper_api, version="1.5.0", memory_mb=400, extra={"queue": 12})
    row = ScraperInstance.objects.get(service="reddit", instance="host-1:4242")
    assert row.heartbeats == 2
    assert row.version == "1.5.0" and row.memory_mb == 400 and row.extra == {"queue": 12}
    assert row.first_seen_at == first.first_seen_at
    assert (row.last_seen_at - first.last_seen_at).total_seconds() == 30
    assert ScraperInstance.objects.count() == 1


def test_the_same_instance_name_in_two_services_is_two_instances(scraper_api, clock):
    beat(scraper_api, service="reddit")
    beat(scraper_api, service="twitter")
    assert ScraperInstance.objects.count() == 2


def test_an_edit_in_admin_reaches_the_next_heartbeat(scraper_api, admin_client, clock):
    assert beat(scraper_api).json()["config"]["batch_size"] == 500
    response = admin_client.post(
        "/admin/fleet/serviceconfiguration/add/",
        {
            "service": "reddit",
            "batch_size": "250",
            "rate_limit_policies": "reddit-api,reddit-html",
            "max_workers": "8",
            "retry_attempts": "5",
            "span_sample_rate": "0.5",
            "min_log_level": "warning",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert beat(scraper_api).json()["config"] == {
        "batch_size": 250,
        "rate_limit_policies": ["reddit-api", "reddit-html"],
        "max_workers": 8,
        "retry_attempts": 5,
        "span_sample_rate": 0.5,
        "min_log_level": "warning",
    }
    row = ServiceConfiguration.objects.get(service="reddit")
    response = admin_client.post(
        f"/admin/fleet/serviceconfiguration/{row.pk}/change/",
        {
            "service": "reddit",
            "batch_size": "100",
            "rate_limit_policies": "reddit-api",
            "max_workers": "8",
            "retry_attempts": "5",
            "span_sample_rate": "0.25",
            "min_log_level": "error",
        },
    )
    assert response.status_code == 302
    config = beat(scraper_api).json()["config"]
    assert config["batch_size"] == 100 and config["min_log_level"] == "error"
    assert config["rate_limit_policies"] == ["reddit-api"]
    from apps.accounts.models import AuditEntry

    actions = list(AuditEntry.objects.filter(target="reddit").values_list("action", flat=True))
    assert sorted(actions) == ["fleet.config.create", "fleet.config.update"]


def test_the_admin_refuses_a_sample_rate_above_one(admin_client):
    response = admin_client.post(
        "/admin/fleet/serviceconfiguration/add/",
        {
            "service": "reddit",
            "batch_size": "250",
            "rate_limit_policies": "",
            "max_workers": "8",
            "retry_attempts": "5",
            "span_sample_rate": "1.5",
            "min_log_level": "info",
        },
    )
    assert response.status_code == 200
    assert not ServiceConfiguration.objects.exists()


def test_the_add_form_starts_from_the_defaults(admin_client):
    html = admin_client.get("/admin/fleet/serviceconfiguration/add/?service=reddit").content
    assert b'value="500"' in html and b'value="0.1"' in html and b'value="reddit"' in html


def test_service_config_is_cached_for_the_configured_seconds(clock, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert service_config("reddit").batch_size == 500
        assert service_config("reddit").batch_size == 500
    configure_service(batch_size=42, max_workers=2, span_sample_rate=1.0, min_log_level="debug")
    clock.advance(4.9)
    assert service_config("reddit").batch_size == 500  # written behind the cache's back
    clock.advance(0.2)
    config = service_config("reddit")
    assert config == ServiceConfig(
        batch_size=42,
        rate_limit_policies=(),
        max_workers=2,
        retry_attempts=1,
        span_sample_rate=1.0,
        min_log_level="debug",
    )


def test_service_config_is_frozen():
    config = ServiceConfig(1, ("a",), 1, 1, 0.1, "info")
    with pytest.raises(AttributeError):
        config.batch_size = 2  # type: ignore[misc]


@override_settings(FLEET_DEFAULT_SPAN_SAMPLE_RATE=0.3, FLEET_DEFAULT_RATE_LIMIT_POLICIES=["x"])
def test_defaults_come_from_settings():
    config = service_config("unconfigured")
    assert config.span_sample_rate == 0.3 and config.rate_limit_policies == ("x",)


def test_a_key_restricted_to_another_service_is_refused(make_api_key, clock):
    from django.test import Client

    from tests.conftest import ApiClient

    api = ApiClient(Client(), make_api_key("scraper", service="twitter"))
    response = beat(api, service="reddit")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "service_not_allowed"
    assert not ScraperInstance.objects.exists()


def test_a_heartbeat_without_a_key_is_refused(anon_api):
    assert beat(anon_api).status_code == 401


def test_a_heartbeat_without_an_instance_is_a_validation_error(scraper_api):
    response = scraper_api.post(URL, {"service": "reddit"})
    assert response.status_code == 422
    paths = [f["path"] for f in response.json()["error"]["details"]["fields"]]
    assert "instance" in paths
    assert not ScraperInstance.objects.exists()


def test_a_huge_extra_is_refused_and_nothing_is_stored(scraper_api):
    response = beat(scraper_api, extra={"blob": "x" * 9000})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "extra"
    assert not ScraperInstance.objects.exists()


def test_extra_is_redacted_before_it_is_stored(scraper_api, clock):
    beat(scraper_api, extra={"proxy": "http://u:hunter2@h:1", "api_token": "abc", "n": 1})
    row = ScraperInstance.objects.get()
    assert row.extra == {"proxy": f"http://u:{REDACTED}@h:1", "api_token": REDACTED, "n": 1}


def test_instances_silent_for_a_day_are_forgotten(scraper_api, clock):
    beat(scraper_api, instance="old")
    clock.advance(23 * 3600)
    beat(scraper_api, instance="recent")
    clock.advance(3600 + 1)
    assert fleet_forget_silent() == 1
    assert list(ScraperInstance.objects.values_list("instance", flat=True)) == ["recent"]


def test_the_instance_list_api_marks_live_and_stale(scraper_api, clock):
    beat(scraper_api, instance="a")
    clock.advance(120)
    beat(scraper_api, instance="b")
    items = scraper_api.get("/api/v1/fleet/instances").json()["items"]
    assert [(i["instance"], i["live"]) for i in items] == [("b", True), ("a", False)]
    stale = scraper_api.get("/api/v1/fleet/instances", state="stale").json()["items"]
    assert [i["instance"] for i in stale] == ["a"]


def test_a_service_restricted_key_lists_only_its_services_instances(make_api_key, clock):
    from django.test import Client

    from tests.conftest import ApiClient

    reddit = ApiClient(Client(), make_api_key("scraper", service="reddit", name="r"))
    twitter = ApiClient(Client(), make_api_key("scraper", service="twitter", name="t"))
    beat(reddit, service="reddit")
    beat(twitter, service="twitter")
    items = reddit.get("/api/v1/fleet/instances").json()["items"]
    assert [i["service"] for i in items] == ["reddit"]
    assert reddit.get("/api/v1/fleet/instances", service="twitter").status_code == 403


def test_a_heartbeat_whose_extra_holds_a_nul_is_refused_and_stores_nothing(scraper_api):
    response = scraper_api.post(
        URL,
        {
            "instance": "nul-1",
            "service": "reddit",
            "version": "1",
            "memory_mb": 1.0,
            "extra": {"note": "a\u0000b"},
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "extra"
    assert not ScraperInstance.objects.filter(instance="nul-1").exists()
