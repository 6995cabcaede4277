from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "orglogin.console"
    label = "console"
