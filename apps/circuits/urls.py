app_name = "circuits"

urlpatterns: list = []
