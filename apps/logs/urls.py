app_name = "logs"

urlpatterns: list = []
