from django.core.exceptions import ValidationError


class MaximumLengthValidator:
    """NIST SP 800-63B asks to accept at least 64 characters; cap far above to bound hashing."""

    max_length = 256

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is too long: use at most {self.max_length} characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password can be up to {self.max_length} characters long."
