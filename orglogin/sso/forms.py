from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

COMPANY_HELP = "This is usually whatever is after the @ sign in your email address."
# Bounds hashing work (orglogin.accounts.passwords caps new passwords at 256).
MAX_PASSWORD = 4096
ALTERNATIVE_EMAIL_HELP = (
    "Add an alternative email to keep all your Course Certificates in one account."
)


class DiscoverForm(forms.Form):
    company = forms.CharField(
        label="Your company's URL",
        help_text=COMPANY_HELP,
        max_length=320,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "organization",
                "autocapitalize": "none",
                "spellcheck": "false",
                "placeholder": "example.com",
            }
        ),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)


class SignupForm(forms.Form):
    """JIT sign-up (spec 2.1.6). The org email is not a field: it comes from the verified
    identity in the session and is only displayed, so a tampered POST cannot change it."""

    first_name = forms.CharField(label="First name", max_length=150)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    alternative_email = forms.EmailField(
        label="Alternative email",
        required=False,
        help_text=ALTERNATIVE_EMAIL_HELP,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters. Common or easily guessed passwords are refused.",
    )

    def __init__(self, *args, org_email: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.org_email = org_email
        self.fields["password"].label = f"Create a {settings.PLATFORM_NAME} account password"

    def clean_alternative_email(self) -> str:
        email = (self.cleaned_data.get("alternative_email") or "").strip().lower()
        if email and email == self.org_email.lower():
            raise forms.ValidationError(
                "This is your organization email. Give a different address, or leave it empty."
            )
        return email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = get_user_model()(
                email=self.org_email,
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                validate_password(password, user=candidate)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class ExistingAccountForm(forms.Form):
    """I'm an existing {PLATFORM_NAME} user (spec 2.2.3): the personal account's credentials.
    Which account to link is decided by these alone, never by the org email (spec 6)."""

    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autocapitalize": "none"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=MAX_PASSWORD,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CurrentPasswordForm(forms.Form):
    """A logged-in owner re-enters their password before a link (spec 2.2.1)."""

    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=MAX_PASSWORD,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class SecondFactorForm(forms.Form):
    """The code field only; allauth's AuthenticateForm checks it inside the flow."""

    code = forms.CharField(
        label="Code",
        max_length=64,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
