# coreadmin: one image for web (gunicorn), Celery worker and Celery beat; docker-compose.yml
# runs all three against Postgres and Redis. Not built on our own machines (no Docker engine
# runs there): keep it plain.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COREADMIN_ENV=production \
    BIND=0.0.0.0:8000

WORKDIR /app

# Dependencies first (cached while only code changes), exactly as pinned in the lock.
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir uv==0.13.9 \
    && uv pip sync --system --no-cache requirements.lock

COPY . .

# Static files are collected at build time; development mode needs no secrets for that.
# WhiteNoise (coreadmin/wsgi.py) serves them from STATIC_ROOT.
RUN COREADMIN_ENV=development python manage.py collectstatic --no-input -v 0

RUN useradd --system --uid 10001 --home-dir /app coreadmin \
    && mkdir -p /tmp/prometheus && chown coreadmin /tmp/prometheus
USER coreadmin

EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "coreadmin.wsgi"]
