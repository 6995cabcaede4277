from django import template

from orglogin.accounts.social import SocialProvider, personal_providers

register = template.Library()


@register.simple_tag(takes_context=True)
def social_providers(context) -> list[SocialProvider]:
    """Google, Facebook, Apple — always all three; unconfigured ones lead to a "not set up" page."""
    return personal_providers(context["request"])
