"""Base for the operator's commands (spec 4): argparse subcommands inside one Django management
command, and the contract for bad input: ONE line on stderr (`orglogin: error: ...`), exit
status 2, nothing written (the whole command runs in one transaction).

A subclass either declares `add_subcommands(subparsers)` and handles each subcommand in a
method `do_<name>(**options)` (dashes become underscores), or overrides `add_arguments` and
`run(**options)` for a command without subcommands. Raise `CliError` for bad input;
ValueError from actions (their messages are operator-safe) are reported the same way.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any, NoReturn

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    handle_default_options,
)
from django.db import transaction

EXIT_USAGE = 2


class CliError(CommandError):
    """Bad input: reported as one line, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=EXIT_USAGE)


def one_line(message: object) -> str:
    return " ".join(str(message).split())


class OneLineErrorParser(CommandParser):
    """argparse's own complaints (missing argument, unknown subcommand) as one line too."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


class OrgloginCommand(BaseCommand):
    #: `False` for commands that only read (no transaction needed, but harmless either way).
    atomic = True
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Same parser, stricter error(): Django's prints usage over several lines (from the
        # command line) or raises CommandError (from call_command); ours is always one line.
        parser.__class__ = OneLineErrorParser
        return parser

    def add_arguments(self, parser: ArgumentParser) -> None:
        if type(self).add_subcommands is OrgloginCommand.add_subcommands:
            return  # a plain command: the subclass overrides add_arguments and run()
        subparsers = parser.add_subparsers(
            dest="subcommand", metavar="SUBCOMMAND", parser_class=OneLineErrorParser
        )
        subparsers.required = True
        self.add_subcommands(subparsers)

    def add_subcommands(self, subparsers) -> None:
        """Declare subcommands; each is handled by `do_<name>(**options)`."""

    def run_from_argv(self, argv: list[str]) -> None:
        # Django's version prints "CommandError: ..." with its own exit code and closes every
        # database connection afterwards; ours keeps the one-line contract and leaves the
        # connections alone (the process ends anyway; in-process callers keep theirs).
        self._called_from_command_line = True
        traceback = "--traceback" in argv
        try:
            parser = self.create_parser(argv[0], argv[1])
            options = parser.parse_args(argv[2:])
            handle_default_options(options)
            cmd_options = vars(options)
            args = cmd_options.pop("args", ())
            self.execute(*args, **cmd_options)
        except CommandError as exc:
            if traceback:
                raise
            self.fail(exc)

    def fail(self, exc: CommandError) -> NoReturn:
        sys.stderr.write(f"orglogin: error: {one_line(exc)}\n")
        sys.stderr.flush()
        sys.exit(EXIT_USAGE)

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except ValueError as exc:
            # Actions report bad input as ValueError subclasses (OrganizationError,
            # ConnectionSetupError, ...) whose messages are written for the operator.
            raise CliError(str(exc)) from exc

    def handle(self, *args: Any, **options: Any) -> None:
        if self.atomic:
            with transaction.atomic():
                self.run(*args, **options)
        else:
            self.run(*args, **options)

    def run(self, *args: Any, **options: Any) -> None:
        name = (options.get("subcommand") or "").replace("-", "_")
        method = getattr(self, f"do_{name}", None)
        if method is None:  # pragma: no cover - argparse already refused it
            raise CliError(f"unknown subcommand {options.get('subcommand')!r}")
        method(**options)
