from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from coreadmin import health, metrics
from coreadmin.api import api

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<path>.*)$", health.api_not_found),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("proxies/", include("apps.proxies.urls")),
    path("circuits/", include("apps.circuits.urls")),
    path("ratelimits/", include("apps.ratelimits.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("logs/", include("apps.logs.urls")),
    path("tracing/", include("apps.tracing.urls")),
    path("caches/", include("apps.caching.urls")),
    path("fleet/", include("apps.fleet.urls")),
    path("keys/", include("apps.accounts.urls")),
    path("", include("apps.dashboard.urls")),
]
