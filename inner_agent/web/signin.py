"""Sign-in to the inner agent's web pages: the one place a password is checked.

``SignIn.attempt`` takes what the browser sent and answers ``Admitted`` (a new session and the
known-device cookie) or ``Refused`` with a reason. In order, cheapest first:

1. **throttled** (429): the client has used its bucket (``throttle.ClientBuckets``); the
   client is the account's known device (a valid ``md_device`` cookie made for the address
   typed), else the address, so an attacker behind the same address cannot use up the
   bucket of the account's own browser;
2. **csrf** (403): the form's token was not made for the pre-session cookie sent with it;
3. **locked** (401): this account from this client is locked (``lockout``), and no valid
   second-factor code came with the try; not counted;
4. **busy** (503): the password-check pool and its queue are full (``pool.CheckPool``);
5. **unreachable** (503): the directory (``[directory.ldap]``) could not be asked whether the
   password is right (down, slow, busy: ``DirectoryUnreachable``); not counted, no strike and
   no spraying count: an outage is nobody's wrong password. Logged and audited
   (``ldap_unreachable``, with the server and the reason) when the server was asked, counted
   like 1 and 4 when it was not (paused after a failure, ``ldap_bind``);
6. **wrong** (401): the password (checked in the pool, for unknown addresses too, so every
   address costs the same) or, for an account with a second factor, the code; counted.

Refusals 1 and 4 are logged aggregated (one line a minute with counts), 5 one line each
(bounded by the pool) with the typed address redacted (``redact``); spraying raises one
warning and one ``signin_spraying`` audit event per pattern and window (``spraying``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from inner_agent.outbound.errors import DirectoryUnreachable
from inner_agent.web.config import SignInSection
from inner_agent.web.cookies import Cookies
from inner_agent.web.lockout import LockPolicy, Strikes, after_failure, locked_for
from inner_agent.web.pool import Busy, CheckPool
from inner_agent.web.redact import AddressRedactor
from inner_agent.web.roles import Role
from inner_agent.web.second_factor import matching_step
from inner_agent.web.sessions import Sessions
from inner_agent.web.spraying import Alert, SprayWatch
from inner_agent.web.store import SignInStore
from inner_agent.web.throttle import ClientBuckets

__all__ = ["MAX_ADDRESS_CHARS", "Accounts", "Admitted", "Attempt", "Refused", "SignIn"]

log = logging.getLogger(__name__)

# An address is at most 254 characters (RFC 5321); more is not an address.
MAX_ADDRESS_CHARS = 254
# Throttled and busy refusals are counted and logged once per this many seconds.
REFUSAL_LOG_S = 60.0

Reason = Literal["throttled", "csrf", "locked", "busy", "unreachable", "wrong"]
STATUS: dict[Reason, int] = {"throttled": 429, "csrf": 403, "locked": 401, "busy": 503,
                             "unreachable": 503, "wrong": 401}  # fmt: skip


class Accounts(Protocol):
    """Who may sign in (``accounts.AccountStore``: the directory's people and console-only
    accounts; with ``[directory.ldap]``, the directory's people by an LDAP bind). ``user``:
    someone known by that address (the log may show it); ``roles``: what the account may do
    now, empty when it may not sign in. ``check_password`` raises ``DirectoryUnreachable``
    when the directory was needed and could not answer (never False for that)."""

    def user(self, email: str) -> object | None: ...
    def roles(self, email: str) -> frozenset[Role]: ...
    def check_password(self, email: str, password: str) -> bool: ...
    def totp_secret(self, email: str) -> str | None: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """What a browser sent to sign in; every field untrusted."""

    email: str
    password: str
    code: str  # the second-factor code; "" when none was typed
    client: str  # the client's address
    form_token: str
    pre_session: str  # the pre-session cookie
    device_cookie: str  # the known-device cookie; "" when none


@dataclass(frozen=True)
class Admitted:
    user: str
    session_id: str
    device_cookie: str  # to set again: a known device stays known


@dataclass(frozen=True)
class Refused:
    reason: Reason
    retry_after_s: int = 0

    @property
    def status(self) -> int:
        return STATUS[self.reason]


class SignIn:
    def __init__(
        self,
        accounts: Accounts,
        store: SignInStore,
        secret: bytes,
        section: SignInSection,
        *,
        sessions: Sessions,
        audit: Audit,
        clock: Callable[[], float],
    ) -> None:
        self.accounts, self.store, self.sessions = accounts, store, sessions
        self.audit, self.clock = audit, clock
        self.cookies = Cookies(secret)
        self.pool = CheckPool(section.hash_workers, section.hash_queue)
        self.buckets = ClientBuckets(section.per_client_per_minute, section.per_client_burst)
        self.policy = LockPolicy(section.lock_after, section.lock_first_s, section.lock_max_s)
        self.redact = AddressRedactor(secret, lambda a: accounts.user(a) is not None)
        self.spraying = SprayWatch()
        self._refusals: Counter[str] = Counter()
        self._refusals_since = clock() - REFUSAL_LOG_S

    def close(self) -> None:
        self.pool.close()

    # ----------------------------------------------------------------------------- attempt

    async def attempt(self, attempt: Attempt) -> Admitted | Refused:
        now = self.clock()
        email = attempt.email.strip().lower()[:MAX_ADDRESS_CHARS]
        device = self.cookies.device_of(attempt.device_cookie, email, now)
        client = f"device:{device}" if device else f"address:{attempt.client}"
        if wait := self.buckets.take(client, now):
            return self._tally(Refused("throttled", wait), now)
        if not self.cookies.form_token_ok(attempt.form_token, attempt.pre_session, now):
            return Refused("csrf")
        strikes = self.store.strikes(email, client)
        secret = self.accounts.totp_secret(email)
        code_step = None
        if locked := locked_for(strikes, now):
            code_step = self._spent_code(email, secret, attempt.code, now)
            if code_step is None:
                self._spray(email, attempt.client, now)
                return Refused("locked", math.ceil(locked))
        checked = await self._password_ok(email, attempt.password, attempt.client, now)
        if isinstance(checked, Refused):
            return checked
        why = "" if checked else "wrong password"
        if checked and secret and code_step is None:
            code_step = self._spent_code(email, secret, attempt.code, now)
            why = "" if code_step is not None else "right password, wrong or missing code"
        if why:
            await self._failed(email, attempt.client, client, past_lock=bool(locked), why=why)
            return Refused("wrong")
        return await self._admit(email, attempt.client, client, device, now)

    async def _password_ok(
        self, email: str, password: str, address: str, now: float
    ) -> bool | Refused:
        """The password checked in the pool; busy (4.) or unreachable (5.) when it could not be."""
        try:
            checked = await self.pool.run(self.accounts.check_password, email, password)
        except DirectoryUnreachable as exc:
            return self._unreachable(exc, email, address, now)
        if isinstance(checked, Busy):
            return self._tally(Refused("busy", checked.retry_after_s), now)
        return checked

    def _unreachable(
        self, exc: DirectoryUnreachable, email: str, address: str, now: float
    ) -> Refused:
        """The directory could not say: no strike, no spraying count (5.)."""
        if not exc.asked:
            return self._tally(Refused("unreachable"), now)
        shown = self.redact(email)
        log.warning("sign-in for %s from %s not checked: ldap_unreachable: LDAP %s: %s", shown,
                    address, exc.server, exc.reason)  # fmt: skip
        self.audit.record("-", "ldap_unreachable", server=exc.server, reason=exc.reason,
                          account=shown, client=address)  # fmt: skip
        return Refused("unreachable")

    def _spent_code(self, email: str, secret: str | None, code: str, now: float) -> int | None:
        """The time step of a valid second-factor code, now spent; None otherwise."""
        step = matching_step(secret, code, now) if secret and code else None
        if step is None or not self.store.spend_step(email, step):
            return None
        return step

    async def _admit(
        self, email: str, address: str, client: str, device: str | None, now: float
    ) -> Admitted:
        await asyncio.to_thread(self.store.clear_strikes, email, client)
        session_id = await asyncio.to_thread(self.sessions.start, email)
        device_id = device or self.cookies.new_device_id()
        log.info("%s signed in from %s%s", email, address, " (known device)" if device else "")
        return Admitted(email, session_id, self.cookies.device(email, device_id, now))

    async def _failed(
        self, email: str, address: str, client: str, *, past_lock: bool, why: str
    ) -> None:
        """A wrong password or code: a strike for the pair, unless it came past a lock (with
        a code) or the pair was locked while this try was being checked."""
        now = self.clock()
        shown = self.redact(email)
        if past_lock:
            log.warning("sign-in failed for %s from %s: %s, past a lock", shown, address, why)
        else:
            counted = await asyncio.to_thread(self.store.update_strikes, email, client,
                                              lambda old: self._strike(old, now))  # fmt: skip
            log.warning("sign-in failed for %s from %s: %s", shown, address, why)
            if counted.locked_until > now and counted.updated == now:
                log.warning("sign-in for %s from %s locked for %d s (lock %d)", shown, address,
                            round(counted.locked_until - now), counted.locks)  # fmt: skip
        self._spray(email, address, now)

    def _strike(self, strikes: Strikes, now: float) -> Strikes:
        """The stored strikes after one more failure; unchanged when already locked."""
        return strikes if locked_for(strikes, now) else after_failure(strikes, now, self.policy)

    # ----------------------------------------------------------------------------- alerts

    def _spray(self, email: str, address: str, now: float) -> None:
        for alert in self.spraying.failed(email, address, now):
            self._alert(alert)

    def _alert(self, alert: Alert) -> None:
        if alert.pattern == "many-accounts":
            log.warning("password spraying suspected: %d accounts failed to sign in from %s "
                        "within 10 minutes", alert.count, alert.subject)  # fmt: skip
            self.audit.record("-", "signin_spraying", pattern=alert.pattern,
                              client=alert.subject, accounts=alert.count)  # fmt: skip
            return
        shown = self.redact(alert.subject)
        log.warning("password spraying suspected: sign-in for %s failed from %d clients "
                    "within 10 minutes", shown, alert.count)  # fmt: skip
        self.audit.record("-", "signin_spraying", pattern=alert.pattern, account=shown,
                          clients=alert.count)  # fmt: skip

    def _tally(self, refused: Refused, now: float) -> Refused:
        """Count a cheap refusal: the first after a quiet minute is logged at once, the rest
        in one line a minute with their counts."""
        if not self._refusals and now - self._refusals_since >= REFUSAL_LOG_S:
            log.warning("sign-ins refused (%s); more are counted and logged once a minute",
                        refused.reason)  # fmt: skip
            self._refusals_since = now
        self._refusals[refused.reason] += 1
        if now - self._refusals_since >= REFUSAL_LOG_S:
            counts = ", ".join(f"{n} {reason}" for reason, n in sorted(self._refusals.items()))
            log.warning("sign-ins refused in the last %d s: %s", round(now - self._refusals_since),
                        counts)  # fmt: skip
            self._refusals.clear()
            self._refusals_since = now
        return refused
