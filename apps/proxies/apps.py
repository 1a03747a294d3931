from django.apps import AppConfig


class ProxiesConfig(AppConfig):
    name = "apps.proxies"
    label = "proxies"
