from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "orglogin.programs"
    label = "programs"
