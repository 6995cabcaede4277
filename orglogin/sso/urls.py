from django.urls import path

from orglogin.sso import views

app_name = "sso"
urlpatterns = [
    path("", views.discover, name="discover"),
]
