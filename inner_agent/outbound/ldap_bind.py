"""Signing in with the directory password (``[directory.ldap]``): the password an employee
types is checked by the LDAP server, never here.

1. An empty password is refused before anything is sent: a simple bind with a name and no
   password is an *unauthenticated* bind (RFC 4513 §5.1.2) that many servers answer with
   success — it proves nothing.
2. The service account (``bind_dn``, the sync's) searches ``base_dn`` for the one person entry
   whose mail attribute is the typed address (escaped as a filter value, RFC 4515), minus the
   entries ``disabled_filter`` matches. None or more than one: refused.
3. A second connection binds as that entry's DN — the DN the server returned, never one built
   from what was typed — with the typed password. The server's answer is the answer.

A server that cannot answer is not a wrong password (decision "An LDAP outage is not a wrong
password"): when it cannot be reached, does not answer within ``signin_timeout_s``, says it is
busy or unavailable (result codes 51, 52), or refuses the service account, ``check`` raises
``DirectoryUnreachable`` with the server and the reason, and the caller counts no strike. For
``signin_pause_s`` after that the server is not asked again (a dead server would otherwise
hold a check worker for every try): sign-ins are told at once, ``asked=False``. Only the
person's own bind answering "no" (49, invalidCredentials, or any other refusal) is False.

Several servers (``url`` a list; decision "LDAP with several servers"): steps 2 and 3 on the
first server not paused, the next one when it cannot answer; the pause is per server, and
``DirectoryUnreachable`` (naming them all) only when none answered or all are paused.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inner_agent.outbound.errors import DirectoryError, DirectoryUnreachable
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.outbound.ldap_sync import (
    ServerState,
    all_down,
    close_connection,
    read_bind_password,
    server_for,
    unreachable_reason,
)

__all__ = [
    "DirectoryState",
    "LdapPasswords",
    "directory_passwords",
    "person_filter",
]

log = logging.getLogger(__name__)

# More than one entry with the address is a directory mistake, not a person: two are enough
# to know.
MAX_MATCHES = 2
# LDAP result codes that mean "not now", not "no" (RFC 4511 §A.2): busy, unavailable.
NOT_NOW_RESULTS = {51: "busy", 52: "unavailable"}


@dataclass(frozen=True)
class DirectoryState:
    """What was last learnt of the directory (by a sign-in or a sync pass): reachable (``server``
    answered), or not since ``since`` (wall-clock seconds) and why (``server`` names every
    configured one then). ``servers``: each server as seen in that look — the one that
    answered and those that could not (empty: only ``server`` was known)."""

    server: str
    reachable: bool
    reason: str = ""
    since: float = 0.0
    servers: tuple[ServerState, ...] = ()


def person_filter(section: LdapSection, email: str) -> str:
    """The filter for the enabled person entry with this address; ``email`` escaped."""
    from ldap3.utils.conv import escape_filter_chars

    wanted = f"({section.attributes.email}={escape_filter_chars(email)})"
    enabled = f"(!{section.disabled_filter})" if section.disabled_filter else ""
    return f"(&{section.people_filter()}{wanted}{enabled})"


class LdapPasswords:
    """``check(email, password)``: whether the LDAP server accepts the person's password;
    ``DirectoryUnreachable`` when it cannot say. Safe to share between the check workers.

    With several servers (``url`` a list, D92) they are asked in order, each with the short
    timeout: the first that answers says yes or no; a server that could not answer is
    skipped for ``signin_pause_s`` (the next one is asked at once); the directory is
    unreachable only when none answered (or all are paused)."""

    def __init__(
        self,
        section: LdapSection,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_state: Callable[[DirectoryState], None] | None = None,
    ) -> None:
        """``on_state``: told when a server stops or starts answering (the status page's
        source; ``directory_health``)."""
        self.section, self.clock, self.on_state = section, clock, on_state
        self._lock = threading.Lock()
        self._down: dict[str, ServerState] = {}  # the servers that last failed, and why
        self._down_at: dict[str, float] = {}  # by ``clock``: when each one's pause began
        self._outage_since = 0.0  # wall clock: since when no server has answered
        self._answered_by = section.url[0]

    def check(self, email: str, password: str) -> bool:
        if not password:
            return False  # an unauthenticated bind is not a sign-in (1.)
        before = self._state()
        try:
            return self._ask_in_turn(email, password)
        finally:
            self._tell(before, self._state())

    def _ask_in_turn(self, email: str, password: str) -> bool:
        """The servers not paused, in order, until one answers; DirectoryUnreachable when
        none does."""
        asked = False
        for url in self._not_paused():
            asked = True
            try:
                dn = self._find(email, url)
                accepted = dn is not None and self._bind(dn, password, url)
            except DirectoryUnreachable as exc:
                self._went_down(url, exc.reason)
                continue
            self._answered(url)
            return accepted
        raise self._none_answered(asked)

    # ------------------------------------------------------------------ the two questions

    def _find(self, email: str, url: str) -> str | None:
        """The DN of the one enabled person with the address (2.); any failure of the
        service account's connection, bind or search is the directory's, not the person's."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        section = self.section
        try:
            password = read_bind_password(section)
        except DirectoryError as exc:
            raise DirectoryUnreachable(url, str(exc)) from None
        connection = ldap3.Connection(
            _server(section, url), user=section.bind_dn or None, password=password or None,
            receive_timeout=math.ceil(section.signin_timeout_s), read_only=True,
        )  # fmt: skip
        try:
            if not connection.bind():
                _raise_if_not_now(url, connection.result)
                raise DirectoryUnreachable(url, "the service account's bind was "
                                           f"refused: {_result(connection.result)}")  # fmt: skip
            connection.search(section.base_dn, person_filter(section, email),
                              attributes=["1.1"], size_limit=MAX_MATCHES)  # fmt: skip
            _raise_if_not_now(url, connection.result)
            found = [str(e["dn"]) for e in connection.response or () if _is_entry(e)]
        except (LDAPException, OSError) as exc:
            why = unreachable_reason(exc) or "the service account's search failed: " \
                f"{type(exc).__name__}: {exc}"[:300]  # fmt: skip
            raise DirectoryUnreachable(url, why) from None
        finally:
            close_connection(connection)
        return found[0] if len(found) == 1 else None

    def _bind(self, dn: str, password: str, url: str) -> bool:
        """The person's own bind (3.) on the server that found the DN: "no" is False; no
        answer is DirectoryUnreachable."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        connection = ldap3.Connection(
            _server(self.section, url), user=dn,
            password=password, authentication=ldap3.SIMPLE,
            receive_timeout=math.ceil(self.section.signin_timeout_s), read_only=True,
        )  # fmt: skip
        try:
            accepted = bool(connection.bind())
            if not accepted:
                _raise_if_not_now(url, connection.result)
            return accepted
        except (LDAPException, OSError) as exc:
            why = unreachable_reason(exc)
            if why is None:
                log.warning("directory sign-in: LDAP %s: bind refused: %s: %s", url,
                            type(exc).__name__, exc)  # fmt: skip
                return False
            raise DirectoryUnreachable(url, why) from None
        finally:
            close_connection(connection)

    # ------------------------------------------------------------------ the pause

    def _not_paused(self) -> list[str]:
        """The servers to ask now, in order: all but those that failed within the pause."""
        now, pause = self.clock(), self.section.signin_pause_s
        with self._lock:
            return [url for url in self.section.url
                    if url not in self._down or now - self._down_at[url] >= pause]  # fmt: skip

    def _none_answered(self, asked: bool) -> DirectoryUnreachable:
        """No server answered: asked (each failed now) or not (each failed a moment ago:
        told at once, with how long until the first is asked again)."""
        with self._lock:
            down = [self._down[url] for url in self.section.url if url in self._down]
            began = min((self._down_at[s.server] for s in down), default=self.clock())
        if not down:  # another sign-in got an answer meanwhile: this one did not
            down = [ServerState(url, False, "no answer", time.time()) for url in self.section.url]
        if asked:
            return all_down(self.section, down)
        wait = math.ceil(began + self.section.signin_pause_s - self.clock())
        paused = [ServerState(s.server, False, f"not asked for {wait} s more: {s.reason}",
                              s.since) for s in down]  # fmt: skip
        return all_down(self.section, paused, asked=False)

    def _went_down(self, url: str, reason: str) -> None:
        now = time.time()
        with self._lock:
            was_out = len(self._down) == len(self.section.url)
            if url not in self._down:
                self._down[url] = ServerState(url, False, reason, now)
            self._down_at[url] = self.clock()
            if len(self._down) == len(self.section.url) and not was_out:
                self._outage_since = now

    def _answered(self, url: str) -> None:
        with self._lock:
            if self._down.pop(url, None) is not None:
                log.warning("directory sign-in: LDAP %s answers again", url)
            self._down_at.pop(url, None)
            self._answered_by = url

    def _state(self) -> DirectoryState:
        """What sign-in knows now: which server answered last and which are down;
        unreachable when every configured one is down."""
        with self._lock:
            down = tuple(self._down[url] for url in self.section.url if url in self._down)
            answered_by, since = self._answered_by, self._outage_since
        if len(down) == len(self.section.url):
            failed = all_down(self.section, down)
            return DirectoryState(failed.server, False, failed.reason, since, down)
        up = ServerState(answered_by, True, "", time.time())
        return DirectoryState(answered_by, True, "", up.since, (up, *down))

    def _tell(self, before: DirectoryState, after: DirectoryState) -> None:
        """A change of which servers answer is told (the health file), not every try."""
        if _shape(before) != _shape(after) and self.on_state is not None:
            self.on_state(after)


def _shape(state: DirectoryState) -> tuple[bool, str, frozenset[str]]:
    down = frozenset(s.server for s in state.servers if not s.reachable)
    return state.reachable, state.server if state.reachable else "", down


def directory_passwords(
    ldap: LdapSection | None, on_state: Callable[[DirectoryState], None] | None = None
) -> Callable[[str, str], bool] | None:
    """How a person's directory password is checked at sign-in: an LDAP bind when
    ``[directory.ldap]`` is set, else not at all."""
    return None if ldap is None else LdapPasswords(ldap, on_state=on_state).check


def _server(section: LdapSection, url: str) -> Any:
    """The server at ``url`` for a sign-in: the short timeout, and no schema read after each
    bind (a round trip sign-in has no use for)."""
    return server_for(section, url, timeout_s=section.signin_timeout_s, schema=False)


def _result(result: Any) -> str:
    if not isinstance(result, dict):
        return "no result"
    return f"{result.get('result')} {result.get('description', '')}".strip()


def _raise_if_not_now(url: str, result: Any) -> None:
    """A "busy" or "unavailable" answer is the server's state, not the person's password."""
    code = result.get("result") if isinstance(result, dict) else None
    if code in NOT_NOW_RESULTS:
        raise DirectoryUnreachable(
            url, f"the server answered {code} {NOT_NOW_RESULTS[code]}: "
            f"{str(result.get('message', ''))[:200]}",
        )  # fmt: skip


def _is_entry(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "searchResEntry"
