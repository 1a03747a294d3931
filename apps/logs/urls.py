from django.urls import path

from apps.logs import views

app_name = "logs"

urlpatterns = [
    path("", views.log_list, name="list"),
    path("tail/", views.log_tail, name="tail"),
]
