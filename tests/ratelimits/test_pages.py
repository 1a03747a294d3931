"""The rate-limits page and its overview tile."""

from __future__ import annotations

import pytest

from apps.accounts.services import api_key_create
from apps.ratelimits import stats
from apps.ratelimits.models import Policy, PolicyOverride
from apps.ratelimits.services import ratelimit_acquire

pytestmark = pytest.mark.django_db


def hammer(policy, times, caller="noisy#1", api_key_id=1):
    for _ in range(times):
        ratelimit_acquire(key=policy, cost=1, api_key_id=api_key_id, caller=caller)
    assert stats.flush()  # what every process does about once a second


def test_the_page_shows_each_policy_with_granted_and_denied_counts(operator_client, clock):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=3)
    hammer("reddit", 5)
    html = operator_client.get("/ratelimits/").content.decode()
    row = html.split('id="policy-reddit"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">3</td>' in row  # granted
    assert '<td class="num">2</td>' in row  # denied
    assert '<rect class="granted"' in row and '<rect class="denied"' in row
    assert "<code>noisy#1</code> 2" in row


def test_the_keys_that_hit_limits_most_are_listed(operator_client, clock):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=1)
    hammer("reddit", 4, caller="greedy#1", api_key_id=1)
    clock.advance(seconds=1)
    hammer("reddit", 2, caller="modest#2", api_key_id=2)
    html = operator_client.get("/ratelimits/").content.decode()
    section = html.split("Keys that hit limits most", 1)[1].split("</section>", 1)[0]
    assert section.index("greedy#1") < section.index("modest#2")
    assert '<td class="num">3</td>' in section


def test_shadow_results_show_what_would_have_been_denied(operator_client, clock):
    Policy.objects.create(key="trial", limit=60, period_ms=60_000, burst=2, shadow=True)
    hammer("trial", 5, caller="tester#3")
    html = operator_client.get("/ratelimits/").content.decode()
    section = html.split("Shadow-mode results", 1)[1].split("</section>", 1)[0]
    assert "trial" in section and '<td class="num">3</td>' in section
    assert '<td class="num">5</td>' in section and "tester#3" in section


def test_tiers_are_shown_and_the_query_count_does_not_grow(
    operator_client, django_assert_max_num_queries, clock
):
    key = api_key_create(name="premium").api_key
    for i in range(20):
        policy = Policy.objects.create(key=f"p{i}", limit=10, period_ms=1000, burst=10)
        PolicyOverride.objects.create(
            policy=policy, api_key=key, tier="gold", limit=100, period_ms=1000, burst=100
        )
    operator_client.get("/ratelimits/")
    with django_assert_max_num_queries(7):
        html = operator_client.get("/ratelimits/").content.decode()
    assert "gold: premium" in html


def test_filters_and_partial_refresh(operator_client, clock):
    Policy.objects.create(key="enforced", limit=1, period_ms=1000, burst=1)
    Policy.objects.create(key="trying", limit=1, period_ms=1000, burst=1, shadow=True)
    html = operator_client.get(
        "/ratelimits/", {"mode": "shadow"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert html.lstrip().startswith('<div id="policy-panels"')
    assert 'id="policy-trying"' in html and 'id="policy-enforced"' not in html


def test_the_overview_tile_counts_denials(operator_client, clock):
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=2)
    hammer("reddit", 5)
    html = operator_client.get("/tiles/rate-limits/").content.decode()
    assert '<div class="big error">3</div>' in html
    assert "reddit: 3" in html
