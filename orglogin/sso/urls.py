from django.urls import path

from orglogin.sso import views

app_name = "sso"
urlpatterns = [
    path("", views.discover, name="discover"),
    path("start/<uuid:public_id>/", views.start, name="start"),
    path("saml/<uuid:public_id>/acs/", views.saml_acs, name="saml_acs"),
    path(
        "saml/<uuid:public_id>/acs/continue/",
        views.saml_acs_continue,
        name="saml_acs_continue",
    ),
    path("saml/<uuid:public_id>/metadata/", views.saml_metadata, name="saml_metadata"),
    path("oidc/<uuid:public_id>/callback/", views.oidc_callback, name="oidc_callback"),
    path("welcome/", views.choose, name="choose"),
    path("welcome/new/", views.signup, name="signup"),
    path("welcome/existing/", views.existing, name="existing"),
    path("welcome/existing/code/", views.link_mfa, name="link_mfa"),
    path("link/<uuid:public_id>/", views.link_start, name="link_start"),
    path("link/confirm/", views.link_confirm, name="link_confirm"),
]
