from django.urls import path

from apps.circuits import views

app_name = "circuits"

urlpatterns = [
    path("", views.circuit_grid, name="list"),
    path("<str:name>/", views.circuit_detail, name="detail"),
    path("<str:name>/force/", views.circuit_force_view, name="force"),
]
