"""Mails enter the state database: each one the SMTP intake spooled (after its 250), and at
start-up every spool file the database does not know (a crash right after 250). Start-up also
removes the spool copies of mails already finished (a crash before their removal) and
quarantines files that are torn or not ours."""

from __future__ import annotations

from inner_agent.outbound.effects import Effects
from inner_agent.outbound.errors import SpoolCorrupt
from inner_agent.outbound.lifecycle import Accepted, LeftoverFound, MailState, Unreadable
from inner_agent.outbound.ports import Stores
from inner_agent.outbound.spool import SpooledMail

__all__ = ["Arrivals"]


class Arrivals:
    def __init__(self, stores: Stores, effects: Effects) -> None:
        self.spool, self.state, self.effects = stores.spool, stores.state, effects

    def accepted(self, mail: SpooledMail) -> None:
        """Store the mail as received. Whoever stores it first (the intake's hook, or a
        start-up that found its file) runs the edge's actions; the other finds it stored."""
        if self.state.add_mail(mail.mail_id, mail.mail_from, mail.rcpt_to, mail.received_at):
            event = Accepted(mail.mail_from, mail.rcpt_to, mail.client_addr)
            self.effects.advance(mail.mail_id, event, now_in=MailState.SPOOLED)

    def recover(self) -> int:
        """Take in spool files the database does not know; returns how many."""
        found = 0
        for mail_id in self.spool.ids():
            known = self.state.mail(mail_id)
            if known is not None:
                state = MailState(known.state)
                if state.finished or state is MailState.QUARANTINED:  # a failed move's copy
                    self.effects.advance(mail_id, LeftoverFound())
                continue
            try:
                mail, _data = self.spool.load(mail_id)
            except SpoolCorrupt as exc:
                self.effects.advance(mail_id, Unreadable(str(exc)), now_in=MailState.SPOOLED)
                continue
            self.accepted(mail)
            found += 1
        return found
