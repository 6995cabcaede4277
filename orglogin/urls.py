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
