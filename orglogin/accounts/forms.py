from __future__ import annotations

from allauth.account.forms import AddEmailForm
from allauth.account.internal.flows.manage_email import add_email
from allauth.account.models import EmailAddress
from allauth.account.utils import filter_users_by_email
from django import forms
from django.http import HttpRequest

EMAIL_TAKEN = "This email address is already used by another account."


class ChangeEmailForm(AddEmailForm):
    """allauth's add-email form (a *change* under ACCOUNT_CHANGE_EMAIL), refusing taken emails.

    allauth stays silent about a taken address while enumeration prevention is on; spec 2.5
    asks to refuse it. The message names no account. A logged-in user learning that some
    account uses an address is the same information the sign-up mail discloses to its owner,
    and `manage_email` is rate limited per user.
    """

    def clean_email(self) -> str:
        value = super().clean_email()
        assert self.user is not None
        if any(u.pk != self.user.pk for u in filter_users_by_email(value)):
            raise forms.ValidationError(EMAIL_TAKEN, code="email_taken")
        return value


class SettingsForm(forms.Form):
    """Account Settings → Settings (spec 2.5): name and the login email, one Save button."""

    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(
        label="Email",
        help_text="A new address takes effect once you follow the link we send to it.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        self.user = user
        kwargs.setdefault(
            "initial",
            {"first_name": user.first_name, "last_name": user.last_name, "email": user.email},
        )
        super().__init__(*args, **kwargs)
        self.email_form: ChangeEmailForm | None = None

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if email.lower() == (self.user.email or "").lower():
            return self.user.email
        email_form = ChangeEmailForm(user=self.user, data={"email": email})
        if not email_form.is_valid():
            raise forms.ValidationError(email_form.errors["email"])
        self.email_form = email_form
        return email_form.cleaned_data["email"]

    def save(self, request: HttpRequest) -> EmailAddress | None:
        """Save the name now; start an email change (confirmed later by link) if asked.

        Returns the pending address when a confirmation link was sent.
        """
        self.user.first_name = self.cleaned_data["first_name"]
        self.user.last_name = self.cleaned_data["last_name"]
        self.user.save(update_fields=["first_name", "last_name"])
        if self.email_form is None:
            return None
        # allauth's flow: stores the pending address, mails the link, sends email_added.
        add_email(request, self.email_form)
        return EmailAddress.objects.get_new(self.user)
