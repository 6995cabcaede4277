from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "orglogin.accounts"
    label = "accounts"

    def ready(self) -> None:
        from orglogin.accounts import signals  # noqa: F401  (connects the audit receivers)
