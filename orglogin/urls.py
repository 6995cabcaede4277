from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("orglogin.core.urls")),
    path("accounts/", include("orglogin.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("sso/", include("orglogin.sso.urls")),
    path("programs/", include("orglogin.programs.urls")),
    path("console/", include("orglogin.console.urls")),
    path("admin/", admin.site.urls),
]

# The development IdP signs whatever it is asked to: only ever mounted with DEBUG on
# (orglogin.core.config refuses DEV_IDP when DEBUG is off).
if settings.DEV_IDP_ENABLED:
    urlpatterns.append(path("dev-idp/", include("orglogin.sso.devidp_urls")))
