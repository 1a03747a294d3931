from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.key_list, name="keys"),
    path("<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
]
