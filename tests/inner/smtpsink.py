"""A real SMTP server (aiosmtpd) for the injection tests, with faults on demand."""

from __future__ import annotations


class FaultySink:
    """Answers 451 to the first ``temporary`` DATA commands, 550 for rcpt 'refuse@...'."""

    def __init__(self, temporary: int = 0) -> None:
        self.temporary = temporary
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("refuse@"):
            return "550 5.1.1 no such user"
        if address.startswith("later@"):
            return "450 4.2.1 mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.temporary > 0:
            self.temporary -= 1
            return "451 4.3.0 try again"
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 2.0.0 queued as ABC123"
