"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import email
import email.policy
import html
import re
import threading
import time
from dataclasses import dataclass
from email.message import Message

from aiosmtpd.controller import Controller

from tests.support.net import free_port

URL_RE = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class ReceivedMail:
    envelope_from: str
    envelope_to: tuple[str, ...]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        return message_text(self.message)

    @property
    def links(self) -> list[str]:
        return extract_links(self.message)


def message_text(message: Message) -> str:
    """All text/plain and text/html parts, decoded, joined by blank lines."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n\n".join(parts)


def extract_links(message: Message) -> list[str]:
    """Every http(s) URL in the message's text parts, in order, without duplicates."""
    seen: dict[str, None] = {}
    for url in URL_RE.findall(html.unescape(message_text(message))):
        seen.setdefault(url.rstrip(".,;"), None)
    return list(seen)


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        self.server._add(
            ReceivedMail(
                envelope_from=envelope.mail_from or "",
                envelope_to=tuple(rcpt.lower() for rcpt in envelope.rcpt_tos),
                message=message,
            )
        )
        return "250 Message accepted for delivery"


class SMTPServer:
    """``start()`` / ``stop()``; ``messages``; ``wait_for(to=...)``; ``clear()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._mails: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    def start(self) -> SMTPServer:
        # aiosmtpd 1.4.6 cannot listen on port 0 itself: pick a free port first.
        self.port = free_port(self.host)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _add(self, mail: ReceivedMail) -> None:
        with self._cond:
            self._mails.append(mail)
            self._cond.notify_all()

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._mails)

    @property
    def messages(self) -> list[Message]:
        return [mail.message for mail in self.mails]

    def clear(self) -> None:
        with self._cond:
            self._mails.clear()

    def mails_to(self, address: str) -> list[ReceivedMail]:
        address = address.lower()
        return [m for m in self.mails if address in m.envelope_to]

    def wait_for(
        self, *, to: str, subject_contains: str = "", timeout: float = 10.0, after: int = 0
    ) -> ReceivedMail:
        """The first mail to ``to`` (skipping the first ``after`` of them) whose subject matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    m
                    for m in self._mails
                    if to.lower() in m.envelope_to and subject_contains in m.subject
                ][after:]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.envelope_to, m.subject) for m in self._mails]
                    raise AssertionError(
                        f"no mail to {to!r} (subject containing {subject_contains!r}) within "
                        f"{timeout}s; received: {seen}"
                    )
                self._cond.wait(left)
