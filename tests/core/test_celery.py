from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from coreadmin.celery import app
from coreadmin.tasks import worker_heartbeat, worker_status


def test_tasks_are_acknowledged_late_and_redelivered_when_a_worker_dies():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.worker_prefetch_multiplier == 1
    # Longer than any countdown we schedule (retry backoff is capped at one hour).
    assert conf.broker_transport_options["visibility_timeout"] > 3600


@pytest.mark.django_db(transaction=True)
def test_beat_copies_our_schedule_into_the_database_where_admins_can_edit_it():
    scheduler = DatabaseScheduler(app=app, lazy=False)
    scheduler.setup_schedule()
    task = PeriodicTask.objects.get(name="worker-heartbeat")
    assert task.task == "coreadmin.tasks.worker_heartbeat"
    assert task.interval is not None and task.interval.every == 30


def test_worker_status_follows_the_heartbeat(clock, settings):
    assert worker_status()["state"] == "down"
    worker_heartbeat()
    status = worker_status()
    assert status["state"] == "ok"
    assert status["age_s"] == 0
    clock.advance(seconds=12)
    assert worker_status()["age_s"] == 12


def test_the_heartbeat_expires_by_itself(settings):
    from coreadmin.redis import connection, key

    worker_heartbeat()
    ttl = connection().ttl(key("worker:heartbeat"))
    assert 0 < ttl <= settings.WORKER_HEARTBEAT_STALE_SECONDS
