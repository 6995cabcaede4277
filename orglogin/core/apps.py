from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "orglogin.core"
    label = "core"
