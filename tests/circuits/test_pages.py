"""The circuits pages: grid, detail with timeline, force buttons for operators."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.circuits.models import Circuit, CircuitEvent
from apps.circuits.services import circuit_acquire, circuit_record
from tests.circuits.faults import caches_for, closed_port_url

pytestmark = pytest.mark.django_db


def make_open(name="shop"):
    Circuit.objects.create(name=name, failure_threshold=2)
    circuit_acquire(name=name)
    circuit_record(name=name, outcome="failure")
    circuit_record(name=name, outcome="failure")


def test_the_grid_shows_a_tile_per_circuit_open_ones_first(operator_client, clock):
    Circuit.objects.create(name="aaa-fine")
    circuit_acquire(name="aaa-fine")
    circuit_record(name="aaa-fine", outcome="success")
    make_open("zzz-broken")
    html = operator_client.get("/circuits/").content.decode()
    assert html.index("zzz-broken") < html.index("aaa-fine")
    assert "state-open" in html and "state-closed" in html
    assert "<svg" in html and 'class="line"' in html
    assert "100.0%" in html and "0.0%" in html  # error rates over the last hour
    assert "/static/css/circuits.css" in html


def test_the_grid_filters_by_state_and_name(operator_client, clock):
    make_open("broken")
    Circuit.objects.create(name="fine")
    html = operator_client.get("/circuits/", {"state": "open"}).content.decode()
    assert "broken" in html and ">fine<" not in html
    html = operator_client.get("/circuits/", {"q": "fin"}).content.decode()
    assert ">fine<" in html and ">broken<" not in html


def test_the_grid_refreshes_as_a_partial(operator_client, clock):
    Circuit.objects.create(name="a")
    html = operator_client.get("/circuits/", headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<div id="circuit-grid"')


def test_the_grid_query_count_does_not_grow_with_circuits(
    operator_client, django_assert_max_num_queries, clock
):
    for i in range(30):
        Circuit.objects.create(name=f"c{i}")
    operator_client.get("/circuits/")  # warm the session and permission caches
    with django_assert_max_num_queries(6):
        assert operator_client.get("/circuits/").status_code == 200


def test_detail_shows_the_event_timeline(operator_client, clock):
    make_open()
    clock.advance(seconds=600)
    html = operator_client.get("/circuits/shop/").content.decode()
    assert "2 consecutive failures (threshold 2)" in html
    assert 'class="band-open"' in html and 'class="band-closed"' in html
    assert operator_client.get("/circuits/nope/").status_code == 404


def test_an_operator_forces_a_circuit_open_and_it_is_audited(operator_client, clock):
    Circuit.objects.create(name="shop")
    response = operator_client.post(
        "/circuits/shop/force/", {"state": "forced_open"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="circuit-state"')
    assert response["HX-Trigger"] == "circuit-changed"
    history = operator_client.get(
        "/circuits/shop/", {"part": "history"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert history.lstrip().startswith('<div id="circuit-history"')
    assert "forced by olivia" in history
    assert circuit_acquire(name="shop").allowed is False
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action) == ("olivia", "circuit.force")
    assert CircuitEvent.objects.get().reason == "forced by olivia"


def test_reset_closes_a_forced_circuit(operator_client, clock):
    Circuit.objects.create(name="shop")
    operator_client.post("/circuits/shop/force/", {"state": "forced_open"})
    response = operator_client.post("/circuits/shop/force/", {"state": "closed"})
    assert response.status_code == 302
    assert circuit_acquire(name="shop").allowed is True
    assert Circuit.objects.get().forced_state == ""


def test_a_viewer_cannot_force_and_sees_no_buttons(viewer_client, clock):
    Circuit.objects.create(name="shop")
    assert viewer_client.post("/circuits/shop/force/", {"state": "forced_open"}).status_code == 403
    assert "Force open</button>" not in viewer_client.get("/circuits/shop/").content.decode()
    assert not AuditEntry.objects.exists()


def test_force_needs_a_csrf_token(csrf_operator_client, clock):
    Circuit.objects.create(name="shop")
    response = csrf_operator_client.post("/circuits/shop/force/", {"state": "forced_open"})
    assert response.status_code == 403
    assert Circuit.objects.get().forced_state == ""


def test_force_rejects_an_unknown_state(operator_client):
    Circuit.objects.create(name="shop")
    assert operator_client.post("/circuits/shop/force/", {"state": "open"}).status_code == 400


def test_the_overview_tile_counts_open_circuits(operator_client, clock):
    make_open("broken")
    Circuit.objects.create(name="fine")
    html = operator_client.get("/tiles/open-circuits/").content.decode()
    assert '<div class="big error">1</div>' in html
    assert "open of 2 circuits" in html and "broken" in html


@pytest.mark.slow
def test_pages_still_render_when_redis_is_unreachable(operator_user, rf, settings, clock):
    # Called directly (through the client: tests/dashboard/test_redis_down.py).
    from apps.circuits.views import circuit_detail, circuit_grid

    Circuit.objects.create(name="shop", forced_state="forced_open")
    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    request = rf.get("/circuits/")
    request.user, request.htmx = operator_user, False
    html = circuit_grid(request).content.decode()
    assert "Redis is not answering" in html and "state-forced_open" in html
    request = rf.get("/circuits/shop/")
    request.user, request.htmx = operator_user, False
    assert circuit_detail(request, "shop").status_code == 200


@pytest.mark.parametrize("path", ["/circuits/", "/circuits/shop/", "/ratelimits/"])
def test_pages_require_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_viewer_sees_the_pages(viewer_client, clock):
    make_open()
    assert viewer_client.get("/circuits/").status_code == 200
    assert viewer_client.get("/circuits/shop/").status_code == 200
    assert viewer_client.get("/ratelimits/").status_code == 200
