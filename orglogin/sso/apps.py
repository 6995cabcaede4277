from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "orglogin.sso"
    label = "sso"
