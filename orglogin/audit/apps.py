from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "orglogin.audit"
    label = "audit"
