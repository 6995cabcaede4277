from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "orglogin.organizations"
    label = "organizations"
