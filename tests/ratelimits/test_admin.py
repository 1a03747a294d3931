from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.accounts.models import AuditEntry
from apps.circuits.models import Circuit
from apps.ratelimits.models import Policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/ratelimits/policy/",
        "/admin/ratelimits/policy/add/",
        "/admin/circuits/circuit/",
        "/admin/circuits/circuit/add/",
    ],
)
def test_admin_pages_open(admin_client, url):
    assert admin_client.get(url).status_code == 200


def test_a_policy_added_in_admin_is_audited(admin_client):
    response = admin_client.post(
        "/admin/ratelimits/policy/add/",
        {
            "key": "reddit",
            "limit": 60,
            "period_ms": 60000,
            "burst": 10,
            "description": "",
            "overrides-TOTAL_FORMS": 0,
            "overrides-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Policy.objects.get().burst == 10
    assert AuditEntry.objects.get().action == "ratelimit.put"


def test_a_circuit_added_in_admin_gets_the_settings_defaults(admin_client, settings):
    add = admin_client.get("/admin/circuits/circuit/add/").content.decode()
    assert f'value="{settings.CIRCUIT_DEFAULTS["failure_threshold"]}"' in add
    Circuit.objects.create(name="x")
    assert (
        admin_client.get(f"/admin/circuits/circuit/{Circuit.objects.get().pk}/change/").status_code
        == 200
    )
