"""The `orglogin` console command: Django's management commands with our settings preset.

`orglogin org add ...`, `orglogin sso add-saml ...` etc. are management commands in
`orglogin/cli/management/commands/`; Django's own (`migrate`, `runserver`, ...) work too.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orglogin.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["orglogin", *(sys.argv[1:] if argv is None else argv)])
    except ImproperlyConfigured as exc:
        # Configuration mistakes are the operator's to fix: one line, exit 2.
        print(f"orglogin: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
