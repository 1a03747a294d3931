from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("retries/", views.retry_list, name="retries"),
    path("retries/bulk/", views.retry_bulk, name="retries-bulk"),
    path("retries/<int:item_id>/", views.retry_item, name="retry"),
    path("retries/<int:item_id>/retry/", views.retry_item_retry, name="retry-retry"),
    path("retries/<int:item_id>/discard/", views.retry_item_discard, name="retry-discard"),
    path("<slug:name>/", views.dataset_detail, name="detail"),
]
