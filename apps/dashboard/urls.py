from django.urls import path

from apps.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("tiles/<slug:slug>/", views.tile, name="tile"),
]
