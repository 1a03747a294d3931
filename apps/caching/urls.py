app_name = "caching"

urlpatterns: list = []
