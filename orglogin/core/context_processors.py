from django.conf import settings
from django.http import HttpRequest


def platform(request: HttpRequest) -> dict[str, str]:
    return {"PLATFORM_NAME": settings.PLATFORM_NAME, "SUPPORT_EMAIL": settings.SUPPORT_EMAIL}
