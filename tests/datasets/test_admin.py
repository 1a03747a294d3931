from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.accounts.models import AuditEntry
from apps.datasets.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    user = User.objects.create_superuser("root", password="pw-root-1234")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["dataset", "record", "retryitem"])
def test_admin_pages_render(admin_client_, posts, model):
    assert admin_client_.get(f"/admin/datasets/{model}/").status_code == 200


def test_a_dataset_is_defined_in_admin_with_the_api_rules_and_audited(admin_client_, db):
    response = admin_client_.post(
        "/admin/datasets/dataset/add/",
        {
            "name": "tags",
            "key_fields": '["slug"]',
            "fields": '{"slug": {"type": "string"}, "label": {"type": "string"}}',
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tags = Dataset.objects.get(name="tags")
    assert tags.fields["slug"] == {"type": "string", "required": True}
    assert AuditEntry.objects.filter(action="dataset.create", target="tags").exists()


def test_admin_refuses_a_bad_definition_with_the_field_paths(admin_client_, db):
    response = admin_client_.post(
        "/admin/datasets/dataset/add/",
        {"name": "bad", "key_fields": '["nope"]', "fields": '{"a": {"type": "text"}}'},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "fields.a.type" in html and "key_fields.0" in html
    assert not Dataset.objects.filter(name="bad").exists()


def test_deleting_a_dataset_in_admin_removes_its_records_and_queue_and_is_audited(
    admin_client_, posts
):
    from apps.datasets.models import Record, RecordCount, RetryItem
    from apps.datasets.services import batch_submit

    batch_submit(dataset=posts, records=[{"id": "a"}, {"id": "b", "score": "x"}], batch_id="del-1")
    assert Record.objects.filter(dataset=posts).count() == 1
    response = admin_client_.post(f"/admin/datasets/dataset/{posts.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Dataset.objects.filter(pk=posts.pk).exists()
    assert not Record.objects.filter(dataset_id=posts.pk).exists()
    assert not RecordCount.objects.filter(dataset_id=posts.pk).exists()
    assert not RetryItem.objects.filter(dataset_id=posts.pk).exists()
    assert AuditEntry.objects.filter(action="dataset.delete", target="posts").exists()
