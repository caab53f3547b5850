"""Password spraying, noticed: many accounts failing from one client, or one account failing
from many clients, within ``WINDOW_S``. Pure: failures and the time in, alerts out; the caller
logs one warning line and records one audit event per alert.

Aggregated: a client (or an account) raises one alert per window however long it goes on;
the alert carries how many accounts (or clients) it had reached. At most ``MAX_SUBJECTS`` of
each are watched, and at most ``MAX_MEMBERS`` names kept per subject, so a flood of random
addresses cannot grow this.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["Alert", "SprayWatch"]

# Ten minutes: sprayers go slowly to stay under per-account limits, but not that slowly.
WINDOW_S = 600.0
# Distinct accounts from one client, or clients for one account, that make a pattern. An
# employee mistyping their own address twice is not one; five is.
THRESHOLD = 5
MAX_SUBJECTS = 2000
MAX_MEMBERS = 100


@dataclass(frozen=True)
class Alert:
    pattern: str  # "many-accounts" (from one client) or "many-clients" (for one account)
    subject: str  # the client, or the account
    count: int  # distinct accounts, or clients, in the window so far


@dataclass
class _Seen:
    since: float
    members: set[str] = field(default_factory=set)
    alerted: bool = False


class _Pattern:
    def __init__(self, name: str) -> None:
        self.name = name
        self.subjects: OrderedDict[str, _Seen] = OrderedDict()

    def note(self, subject: str, member: str, now: float) -> Alert | None:
        seen = self.subjects.pop(subject, None)
        if seen is None or now - seen.since > WINDOW_S:
            seen = _Seen(now)
        if len(seen.members) < MAX_MEMBERS:
            seen.members.add(member)
        self.subjects[subject] = seen
        while len(self.subjects) > MAX_SUBJECTS:
            self.subjects.popitem(last=False)
        if seen.alerted or len(seen.members) < THRESHOLD:
            return None
        seen.alerted = True
        return Alert(self.name, subject, len(seen.members))


class SprayWatch:
    def __init__(self) -> None:
        self._by_client = _Pattern("many-accounts")
        self._by_account = _Pattern("many-clients")

    def failed(self, account: str, client: str, now: float) -> list[Alert]:
        """Note a failed sign-in; the alerts it raises (none most of the time)."""
        found = [
            self._by_client.note(client, account, now),
            self._by_account.note(account, client, now),
        ]
        return [alert for alert in found if alert is not None]
