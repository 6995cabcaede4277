from django.urls import path

from orglogin.programs import views

app_name = "programs"
urlpatterns = [
    path("invitation/<str:token>/", views.invitation_landing, name="invitation"),
]
