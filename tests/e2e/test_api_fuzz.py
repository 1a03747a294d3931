"""schemathesis against our own OpenAPI document, in-process over WSGI.

With an admin key: no 5xx on any generated input, and every documented response
conforms to its schema. With no key: every authenticated operation is refused with 401.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from apps.accounts.services import api_key_create
from coreadmin.wsgi import application

PUBLIC_OPERATIONS: set[str] = set()
# Failure modes API.md chooses on purpose: a lease with no usable proxy is 503.
CONTRACT_5XX = {"POST /api/v1/proxies/lease": {503}}


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture(autouse=True)
def keep_the_test_transaction(db):
    """Like Django's test client: keep the test's transaction (and connection) open across
    the requests schemathesis sends through the WSGI handler."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(db) -> str:
    return api_key_create(name="fuzz-admin", scope="admin").raw_key


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    derandomize=True,
)
def test_no_input_makes_the_api_fail_or_break_its_schema(case, admin_key):
    response = case.call(headers={"X-API-Key": admin_key})
    if response.status_code in CONTRACT_5XX.get(case.operation.label, set()):
        return
    case.validate_response(
        response, checks=[not_a_server_error, content_type_conformance, response_schema_conformance]
    )


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    derandomize=True,
)
def test_calls_without_a_key_are_refused(case):
    response = case.call()
    assert response.status_code < 500, response.text
    if case.method.upper() != case.operation.method.upper():
        assert response.status_code == 405  # schemathesis also probes undeclared methods
    elif case.operation.label not in PUBLIC_OPERATIONS:
        assert response.status_code == 401, (case.operation.label, response.status_code)
        assert response.json()["error"]["code"].startswith("api_key_")
