from __future__ import annotations

import datetime as dt

import pytest

from apps.fleet.models import ScraperInstance, ServiceConfiguration
from coreadmin.clock import clock as global_clock

pytestmark = pytest.mark.django_db


def make_instances(n: int, *, service: str = "reddit", age_s: float = 0.0) -> None:
    now = global_clock.now() - dt.timedelta(seconds=age_s)
    start = ScraperInstance.objects.count()
    ScraperInstance.objects.bulk_create(
        ScraperInstance(
            service=service,
            instance=f"{service}-{start + i}",
            version="2.0.1",
            memory_mb=100.0,
            first_seen_at=now - dt.timedelta(hours=1),
            last_seen_at=now,
        )
        for i in range(n)
    )


def test_the_fleet_page_shows_live_and_stale_instances(viewer_client, clock):
    make_instances(2, age_s=10)
    make_instances(1, service="twitter", age_s=600)
    html = viewer_client.get("/fleet/").content.decode()
    assert html.count('<span class="badge badge-ok">live</span>') == 2
    assert html.count('<span class="badge badge-stale">stale</span>') == 1
    assert "reddit-0" in html and "twitter-2" in html and "2.0.1" in html
    assert "100 MB" in html
    assert "10\xa0minutes ago" in html and "0\xa0minutes ago" in html


def test_the_fleet_page_filters_by_state_and_service(viewer_client, clock):
    make_instances(2, age_s=10)
    make_instances(1, service="twitter", age_s=600)
    stale = viewer_client.get("/fleet/?state=stale", headers={"HX-Request": "true"})
    html = stale.content.decode()
    assert html.lstrip().startswith('<div id="fleet-instances"')
    assert "twitter-2" in html and "reddit-0" not in html
    html = viewer_client.get("/fleet/?service=reddit").content.decode()
    assert "reddit-1" in html and "twitter-2" not in html.split('id="fleet-instances"')[1]


def test_the_fleet_page_shows_each_services_effective_configuration(viewer_client, clock):
    make_instances(1)
    ServiceConfiguration.objects.create(
        service="twitter",
        batch_size=77,
        rate_limit_policies=["tw-api"],
        max_workers=3,
        retry_attempts=2,
        span_sample_rate=0.25,
        min_log_level="warning",
    )
    html = viewer_client.get("/fleet/").content.decode()
    services = html.split("Services and their configuration")[1].split("</table>")[0]
    assert "<code>tw-api</code>" in services and "77" in services and "25%" in services
    assert "reddit" in services and "500" in services and "10%" in services


def test_the_fleet_page_query_count_does_not_grow_with_instances(
    viewer_client, clock, django_assert_max_num_queries
):
    make_instances(3)
    viewer_client.get("/fleet/")
    with django_assert_max_num_queries(12) as few:
        viewer_client.get("/fleet/")
    make_instances(120, service="twitter")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = viewer_client.get("/fleet/")
    assert "Page 1 of 3" in response.content.decode()


def test_the_overview_tile_counts_live_scraper_instances(viewer_client, clock):
    make_instances(3, age_s=5)
    make_instances(2, service="twitter", age_s=500)
    html = viewer_client.get("/tiles/fleet/").content.decode()
    assert "Live scraper instances" in html
    assert '<div class="big">3</div>' in html and "2 stale" in html


def test_the_fleet_page_needs_a_login(client):
    assert client.get("/fleet/").status_code == 302
