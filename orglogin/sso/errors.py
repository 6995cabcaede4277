from __future__ import annotations

from orglogin.core.errors import ErrorCode


class SsoError(Exception):
    """An SSO step failed. `code` picks the learner's text; `check` and `detail` name the
    precise technical cause for the audit log and admin diagnostics, never for the learner.
    """

    def __init__(self, code: ErrorCode, check: str, detail: str = "") -> None:
        super().__init__(f"{code}: {check}: {detail}" if detail else f"{code}: {check}")
        self.code = code
        self.check = check
        self.detail = detail
