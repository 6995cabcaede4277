from django.urls import path

from orglogin.accounts.views import dashboard
from orglogin.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", dashboard, name="dashboard"),
    path("help/sso-troubleshooting/", views.troubleshooting, name="troubleshooting"),
]
