from django.urls import path

from apps.proxies import views

app_name = "proxies"

urlpatterns = [
    path("", views.proxy_list, name="list"),
    path("<int:proxy_id>/", views.proxy_detail, name="detail"),
    path("<int:proxy_id>/freeze/", views.proxy_freeze, name="freeze"),
    path("<int:proxy_id>/unfreeze/", views.proxy_unfreeze, name="unfreeze"),
    path("<int:proxy_id>/check/", views.proxy_check, name="check"),
]
