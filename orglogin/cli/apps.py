from django.apps import AppConfig


class CliConfig(AppConfig):
    name = "orglogin.cli"
    label = "cli"
