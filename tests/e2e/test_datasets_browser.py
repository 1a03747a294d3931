"""The retry queue in a real browser: htmx filters, an in-place discard, edit and retry,
and a bulk action through its confirmation page."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.datasets.models import Record, RetryItem
from apps.datasets.services import batch_submit, dataset_put

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(db):
    posts, _ = dataset_put(
        name="posts",
        key_fields=["id"],
        fields={"id": {"type": "string"}, "score": {"type": "integer"}},
        actor="test",
    )
    batch_submit(
        dataset=posts,
        records=[{"id": "alpha", "score": "lots"}, {"id": "beta", "score": "few"}],
        batch_id=None,
    )
    return {item.record["id"]: item for item in RetryItem.objects.all()}


def test_an_operator_filters_discards_edits_and_bulk_retries(
    logged_in_page, live_server, console_errors, queued
):
    page = logged_in_page
    page.goto(live_server.url + "/datasets/retries/?tab=scheduled")
    assert page.locator("#retry-results tbody tr").count() == 2

    with page.expect_response(lambda r: "q=beta" in r.url):
        page.fill("input[name=q]", "beta")
    page.wait_for_function("document.querySelectorAll('#retry-results tbody tr').length === 1")
    assert "beta" in page.locator("#retry-results tbody").inner_text()

    beta = queued["beta"]
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: "/discard/" in r.url) as discarded:
        page.click(f"#retry-{beta.pk} button.btn-danger")
    assert discarded.value.status == 200
    assert "badge-resolved" in discarded.value.text()  # the row as it is now
    assert RetryItem.objects.get(pk=beta.pk).resolution == "discarded"

    alpha = queued["alpha"]
    page.goto(live_server.url + f"/datasets/retries/{alpha.pk}/")
    page.fill("textarea[name=record]", '{"id": "alpha", "score": 3}')
    page.click("text=Save and retry now")
    page.wait_for_selector(".badge-resolved")
    assert Record.objects.get(key={"id": "alpha"}).data == {"id": "alpha", "score": 3}
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"retry.discard", "retry.edit_and_retry"} <= actions
    assert console_errors == []


def test_a_bulk_discard_goes_through_its_confirmation_page(logged_in_page, live_server, queued):
    page = logged_in_page
    page.goto(live_server.url + "/datasets/retries/?tab=scheduled")
    page.click("text=Discard all 2 matching")
    page.wait_for_selector("text=Discard 2 items?")
    assert RetryItem.objects.filter(status="resolved").count() == 0
    page.click("text=Yes, discard 2")
    page.wait_for_selector("text=2 items discarded.")
    assert RetryItem.objects.filter(status="resolved").count() == 2
