"""WSGI entry point for gunicorn (production, benchmarks, Docker).

Static files: when ``collectstatic`` has filled STATIC_ROOT (the Dockerfile does), WhiteNoise
serves them from there (gzip-aware, with cache headers), so the dashboard needs no separate
file server; a reverse proxy in front may still serve /static/ itself. `make run` uses
coreadmin.devwsgi instead, which serves them straight from the source folders.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from whitenoise import WhiteNoise

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreadmin.settings")
django_application = get_wsgi_application()
application = django_application
if os.path.isdir(settings.STATIC_ROOT):
    application = WhiteNoise(
        django_application, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL
    )
