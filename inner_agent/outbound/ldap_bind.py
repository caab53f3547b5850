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
    """What was last learnt of the server (by a sign-in or a sync pass): reachable, or not
    since ``since`` (wall-clock seconds) and why."""

    server: str
    reachable: bool
    reason: str = ""
    since: float = 0.0


def person_filter(section: LdapSection, email: str) -> str:
    """The filter for the enabled person entry with this address; ``email`` escaped."""
    from ldap3.utils.conv import escape_filter_chars

    wanted = f"({section.attributes.email}={escape_filter_chars(email)})"
    enabled = f"(!{section.disabled_filter})" if section.disabled_filter else ""
    return f"(&{section.people_filter()}{wanted}{enabled})"


class LdapPasswords:
    """``check(email, password)``: whether the LDAP server accepts the person's password;
    ``DirectoryUnreachable`` when it cannot say. Safe to share between the check workers."""

    def __init__(
        self,
        section: LdapSection,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_state: Callable[[DirectoryState], None] | None = None,
    ) -> None:
        """``on_state``: told when the server turns unreachable or reachable again (the
        status page's source; ``directory_health``)."""
        self.section, self.clock, self.on_state = section, clock, on_state
        self._lock = threading.Lock()
        self._down: DirectoryState | None = None
        self._down_at = 0.0  # by ``clock``: when the pause began

    def check(self, email: str, password: str) -> bool:
        if not password:
            return False  # an unauthenticated bind is not a sign-in (1.)
        self._refuse_while_paused()
        try:
            dn = self._find(email)
            accepted = dn is not None and self._bind(dn, password)
        except DirectoryUnreachable as exc:
            self._went_down(exc.reason)
            raise
        self._came_back()
        return accepted

    # ------------------------------------------------------------------ the two questions

    def _find(self, email: str) -> str | None:
        """The DN of the one enabled person with the address (2.); any failure of the
        service account's connection, bind or search is the directory's, not the person's."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        section = self.section
        try:
            password = read_bind_password(section)
        except DirectoryError as exc:
            raise DirectoryUnreachable(section.url, str(exc)) from None
        connection = ldap3.Connection(
            _server(section), user=section.bind_dn or None, password=password or None,
            receive_timeout=math.ceil(section.signin_timeout_s), read_only=True,
        )  # fmt: skip
        try:
            if not connection.bind():
                _raise_if_not_now(section, connection.result)
                raise DirectoryUnreachable(section.url, "the service account's bind was "
                                           f"refused: {_result(connection.result)}")  # fmt: skip
            connection.search(section.base_dn, person_filter(section, email),
                              attributes=["1.1"], size_limit=MAX_MATCHES)  # fmt: skip
            _raise_if_not_now(section, connection.result)
            found = [str(e["dn"]) for e in connection.response or () if _is_entry(e)]
        except (LDAPException, OSError) as exc:
            why = unreachable_reason(exc) or "the service account's search failed: " \
                f"{type(exc).__name__}: {exc}"[:300]  # fmt: skip
            raise DirectoryUnreachable(section.url, why) from None
        finally:
            close_connection(connection)
        return found[0] if len(found) == 1 else None

    def _bind(self, dn: str, password: str) -> bool:
        """The person's own bind (3.): "no" is False; no answer is DirectoryUnreachable."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        section = self.section
        connection = ldap3.Connection(
            _server(section), user=dn,
            password=password, authentication=ldap3.SIMPLE,
            receive_timeout=math.ceil(section.signin_timeout_s), read_only=True,
        )  # fmt: skip
        try:
            accepted = bool(connection.bind())
            if not accepted:
                _raise_if_not_now(section, connection.result)
            return accepted
        except (LDAPException, OSError) as exc:
            why = unreachable_reason(exc)
            if why is None:
                log.warning("directory sign-in: LDAP %s: bind refused: %s: %s", section.url,
                            type(exc).__name__, exc)  # fmt: skip
                return False
            raise DirectoryUnreachable(section.url, why) from None
        finally:
            close_connection(connection)

    # ------------------------------------------------------------------ the pause

    def _refuse_while_paused(self) -> None:
        with self._lock:
            down, left = self._down, self._down_at + self.section.signin_pause_s - self.clock()
        if down is not None and left > 0:
            raise DirectoryUnreachable(
                down.server,
                f"not asked for {math.ceil(left)} s more: {down.reason}",
                asked=False,
            )

    def _went_down(self, reason: str) -> None:
        with self._lock:
            fresh, state = self._down is None, self._down
            if state is None:
                state = self._down = DirectoryState(self.section.url, False, reason, time.time())
            self._down_at = self.clock()
        if fresh and self.on_state is not None:
            self.on_state(state)

    def _came_back(self) -> None:
        with self._lock:
            was_down, self._down = self._down is not None, None
        if was_down:
            log.warning("directory sign-in: LDAP %s answers again", self.section.url)
            if self.on_state is not None:
                self.on_state(DirectoryState(self.section.url, True, "", time.time()))


def directory_passwords(
    ldap: LdapSection | None, on_state: Callable[[DirectoryState], None] | None = None
) -> Callable[[str, str], bool] | None:
    """How a person's directory password is checked at sign-in: an LDAP bind when
    ``[directory.ldap]`` is set, else not at all."""
    return None if ldap is None else LdapPasswords(ldap, on_state=on_state).check


def _server(section: LdapSection) -> Any:
    """The server for a sign-in: the short timeout, and no schema read after each bind (a
    round trip sign-in has no use for)."""
    return server_for(section, timeout_s=section.signin_timeout_s, schema=False)


def _result(result: Any) -> str:
    if not isinstance(result, dict):
        return "no result"
    return f"{result.get('result')} {result.get('description', '')}".strip()


def _raise_if_not_now(section: LdapSection, result: Any) -> None:
    """A "busy" or "unavailable" answer is the server's state, not the person's password."""
    code = result.get("result") if isinstance(result, dict) else None
    if code in NOT_NOW_RESULTS:
        raise DirectoryUnreachable(
            section.url, f"the server answered {code} {NOT_NOW_RESULTS[code]}: "
            f"{str(result.get('message', ''))[:200]}",
        )  # fmt: skip


def _is_entry(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "searchResEntry"
