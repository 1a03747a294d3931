from django.urls import path

from apps.ratelimits import views

app_name = "ratelimits"

urlpatterns = [
    path("", views.policy_page, name="list"),
]
