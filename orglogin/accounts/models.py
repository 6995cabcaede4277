from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac


def new_session_epoch() -> str:
    return secrets.token_hex(8)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A learner. The login email is `email`; allauth's EmailAddress rows track verification."""

    username = None
    email = models.EmailField("email address")
    # Optional second address given at SSO sign-up "to keep all your Course Certificates in
    # one account" (spec 2.1.6). Not a login identifier.
    alternative_email = models.EmailField(blank=True)
    # Part of every session's auth hash: rotating it ends all of the account's sessions on
    # every app process and session backend (see end_all_sessions).
    session_epoch = models.CharField(max_length=16, default=new_session_epoch)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")
        ]

    def __str__(self) -> str:
        return self.email

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Django's hash covers only the password; ours also covers the session epoch.
        return salted_hmac(
            "orglogin.accounts.User.session_auth_hash",
            f"{self.password}:{self.session_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def end_all_sessions(self) -> None:
        """Log this account out everywhere: every existing session stops authenticating."""
        self.session_epoch = new_session_epoch()
        self.save(update_fields=["session_epoch"])

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email
