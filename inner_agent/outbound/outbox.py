"""Sends the queued notices (approval requests, reminders, sender notices) through the
internal mail server. A refused or unreachable server defers the notice, backing off from
``notice.retry_s``, doubling, to at most MAX_NOTICE_BACKOFF_S."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable

from agentkit.settings import SMTP_CLIENT_TIMEOUT_S, parse_host_port
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.ports import Audit
from inner_agent.outbound.state import Notice, OutboundState

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

# An hour: an internal server down for a day is retried 24 times, not thousands.
MAX_NOTICE_BACKOFF_S = 3600.0


class Outbox:
    def __init__(
        self,
        section: OutboundSection,
        state: OutboundState,
        audit: Audit,
        clock: Callable[[], float],
    ) -> None:
        self.host, self.port = parse_host_port(section.notice.internal_smtp)
        self.hostname, self.notice = section.hostname, section.notice
        self.state, self.audit, self.clock = state, audit, clock

    def send_due(self) -> int:
        """Send every notice that is due; returns how many went."""
        sent = 0
        for notice in self.state.due_notices():
            if self._send(notice):
                sent += 1
        return sent

    def _send(self, notice: Notice) -> bool:
        try:
            with smtplib.SMTP(
                self.host, self.port, local_hostname=self.hostname, timeout=SMTP_CLIENT_TIMEOUT_S
            ) as smtp:
                smtp.sendmail(self.notice.from_address, [notice.rcpt], notice.data)
        except (OSError, smtplib.SMTPException) as exc:
            wait = min(self.notice.retry_s * 2**notice.attempts, MAX_NOTICE_BACKOFF_S)
            self.state.notice_deferred(notice.id, self.clock() + wait, str(exc)[:300])
            log.warning("notice %s to %s deferred: %s", notice.kind, notice.rcpt, exc)
            return False
        self.state.notice_sent(notice.id)
        if notice.kind.startswith("notice:"):
            self.audit.record(notice.mail_id, "sender_notified", outcome=notice.kind[7:])
        return True
