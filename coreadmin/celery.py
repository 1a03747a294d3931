import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreadmin.settings")

app = Celery("coreadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["coreadmin"])


@worker_ready.connect
def announce_worker(**kwargs: object) -> None:
    """A first heartbeat as soon as a worker is up, through the broker like beat's, so the
    dashboard shows it alive at once instead of after beat's first 30 s tick."""
    from coreadmin.tasks import worker_heartbeat

    worker_heartbeat.delay()
