"""The dashboard stays usable while Redis is down: sessions are in Postgres."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.circuits.models import Circuit
from apps.ratelimits.models import Policy

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_an_operator_logs_in_and_uses_the_pages_while_redis_is_down(
    operator_user, redis_down, clock
):
    Circuit.objects.create(name="shop", forced_state="forced_open")
    Policy.objects.create(key="reddit", limit=10, period_ms=60_000, burst=10)
    client = Client()
    response = client.post("/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.status_code == 302 and response["Location"] == "/"

    overview = client.get("/")
    assert overview.status_code == 200 and "olivia" in overview.content.decode()
    tile = client.get("/tiles/open-circuits/").content.decode()
    assert "Redis not answering" in tile

    grid = client.get("/circuits/")
    assert grid.status_code == 200
    assert "Redis is not answering" in grid.content.decode()
    detail = client.get("/circuits/shop/")
    assert detail.status_code == 200 and "Redis not answering" in detail.content.decode()

    limits = client.get("/ratelimits/")
    assert limits.status_code == 200
    html = limits.content.decode()
    assert "Redis is not answering" in html and "reddit" in html


def test_a_wrong_password_is_refused_while_redis_is_down(operator_user, redis_down):
    response = Client().post("/login/", {"username": "olivia", "password": "nope"})
    assert response.status_code == 200 and "_auth_user_id" not in response.client.session
