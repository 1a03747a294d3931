"""WSGI application for `make run` only: Django plus its static files (from the app and
project static dirs, like runserver serves them). Production serves /static/ from
collectstatic output in front of gunicorn and uses coreadmin.wsgi."""

from django.contrib.staticfiles.handlers import StaticFilesHandler

from coreadmin.wsgi import django_application

application = StaticFilesHandler(django_application)
