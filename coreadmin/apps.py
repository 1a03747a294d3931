from django.apps import AppConfig


class CoreadminConfig(AppConfig):
    """The project package as an app, for one thing: stop start-up when settings are
    invalid, naming every bad variable at once, the core ones and those of every app's
    block at the end of settings.py alike."""

    name = "coreadmin"
    verbose_name = "coreadmin"

    def ready(self) -> None:
        from coreadmin import settings

        settings.env.raise_if_invalid()
