from django.urls import path

from apps.tracing import views

app_name = "tracing"

urlpatterns = [
    path("", views.tracker, name="tracker"),
    path("threads/<path:thread_id>/", views.thread, name="thread"),
]
