"""Puts every mail in state ``sending`` on the out link (stream ``outbound``): the original
bytes as the internal server handed them over, in ``mailsafe.payload.OutboundMail``.

``sending`` is stored before this pass runs, and a bundle is rebuilt byte for byte the same
(the release time is the stored time of entering ``sending``), so a crash after the link took
it publishes the same bundle under the same id again, which the sender accepts as a repeat."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from inner_agent.outbound.effects import Effects
from inner_agent.outbound.lifecycle import MailState, Published
from inner_agent.outbound.ports import Publisher, Stores
from mailsafe.payload import OutboundMail, encode_outbound

__all__ = ["Publishing"]


class Publishing:
    def __init__(
        self,
        stores: Stores,
        publisher: Publisher,
        effects: Effects,
        clock: Callable[[], float],
    ) -> None:
        self.spool, self.state = stores.spool, stores.state
        self.publisher, self.effects, self.clock = publisher, effects, clock

    def publish_pending(self) -> int:
        """Publish every mail that may leave; returns how many."""
        sent = 0
        for mail_id in self.state.mails_in(str(MailState.SENDING)):
            self._publish(mail_id)
            sent += 1
        return sent

    def _publish(self, mail_id: str) -> None:
        mail, data = self.spool.load(mail_id)
        row = self.state.mail(mail_id)
        decided_by = row.decided_by if row else ""
        decided_at = self.state.state_since(mail_id) or self.clock()
        bundle = encode_outbound(
            OutboundMail(
                mail_id=mail_id,
                mail_from=mail.mail_from,
                rcpt_to=mail.rcpt_to,
                data=data,
                decided_by=decided_by,
                decided_at=datetime.fromtimestamp(decided_at, UTC).isoformat(timespec="seconds"),
            )
        )
        seq = self.publisher.publish(bundle, bytes.fromhex(mail_id))
        self.effects.advance(mail_id, Published(seq, len(data), decided_by))
