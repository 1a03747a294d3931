from django.urls import path

from apps.caching import views

app_name = "caching"

urlpatterns = [path("", views.caches, name="caches")]
