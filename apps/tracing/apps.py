from django.apps import AppConfig


class TracingConfig(AppConfig):
    name = "apps.tracing"
    label = "tracing"

    def ready(self) -> None:
        from apps.tracing.middleware import install_ninja_hooks

        install_ninja_hooks()
