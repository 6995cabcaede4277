from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "orglogin.accounts"
    label = "accounts"
