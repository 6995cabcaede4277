"""The development IdP's URLs, mounted under /dev-idp/ by orglogin.urls only when
settings.DEV_IDP_ENABLED (never with DEBUG off)."""

from django.urls import path

from orglogin.sso import devidp_views

app_name = "devidp"
urlpatterns = [
    path("metadata/", devidp_views.metadata, name="metadata"),
    path("sso/", devidp_views.sso, name="sso"),
]
