app_name = "ratelimits"

urlpatterns: list = []
