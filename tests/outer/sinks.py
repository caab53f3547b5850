"""Fault-injecting SMTP sinks (aiosmtpd) for the delivery tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from maildiode.trial.stack import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


@dataclass
class FaultySink:
    """Answers DATA from ``replies`` in order (the last one repeats); RCPT refusals by address."""

    replies: list[str] = field(default_factory=lambda: ["250 2.0.0 OK"])
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    data_calls: int = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.replies[min(self.data_calls, len(self.replies) - 1)]
        self.data_calls += 1
        if reply.startswith("250"):
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return reply


def start_sink(sink: FaultySink, **kwargs) -> Controller:
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller
