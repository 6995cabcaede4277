from django.urls import path

from orglogin.accounts import views

app_name = "accounts"
urlpatterns = [
    # Shadows allauth's URL of the same path (this module is included before allauth.urls),
    # so reverse("account_confirm_email") keeps working and lands here.
    path("confirm-email/<str:key>/", views.confirm_email, name="confirm_email"),
    path("settings/", views.account_settings, name="settings"),
    path("settings/delink/", views.delink, name="delink"),
    path(
        "login-method/<slug:provider>/not-set-up/",
        views.social_unavailable,
        name="social_unavailable",
    ),
]
