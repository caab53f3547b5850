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

Any failure (the server down, a timeout, the service account refused) refuses the sign-in and
is logged without the password; the caller counts the refusal for the lockout like any wrong
password.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from inner_agent.outbound.errors import DirectoryError
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.outbound.ldap_sync import read_bind_password, server_for

__all__ = ["LdapPasswords", "directory_passwords", "person_filter"]

log = logging.getLogger(__name__)

# More than one entry with the address is a directory mistake, not a person: two are enough
# to know.
MAX_MATCHES = 2


def person_filter(section: LdapSection, email: str) -> str:
    """The filter for the enabled person entry with this address; ``email`` escaped."""
    from ldap3.utils.conv import escape_filter_chars

    wanted = f"({section.attributes.email}={escape_filter_chars(email)})"
    enabled = f"(!{section.disabled_filter})" if section.disabled_filter else ""
    return f"(&{section.people_filter()}{wanted}{enabled})"


class LdapPasswords:
    """``check(email, password)``: whether the LDAP server accepts the person's password."""

    def __init__(self, section: LdapSection) -> None:
        self.section = section

    def check(self, email: str, password: str) -> bool:
        if not password:
            return False  # an unauthenticated bind is not a sign-in (1.)
        from ldap3.core.exceptions import LDAPException

        try:
            dn = self._find(email)
            return dn is not None and self._bind(dn, password)
        except (LDAPException, DirectoryError, OSError) as exc:
            log.warning("directory sign-in: LDAP %s: %s: %s", self.section.url,
                        type(exc).__name__, exc)  # fmt: skip
            return False

    def _find(self, email: str) -> str | None:
        import ldap3

        section = self.section
        password = read_bind_password(section)
        with ldap3.Connection(
            server_for(section), user=section.bind_dn or None, password=password or None,
            receive_timeout=math.ceil(section.timeout_s), auto_bind=True, read_only=True,
        ) as connection:  # fmt: skip
            connection.search(section.base_dn, person_filter(section, email),
                              attributes=["1.1"], size_limit=MAX_MATCHES)  # fmt: skip
            found = [str(e["dn"]) for e in connection.response or () if _is_entry(e)]
        return found[0] if len(found) == 1 else None

    def _bind(self, dn: str, password: str) -> bool:
        import ldap3

        connection = ldap3.Connection(
            server_for(self.section), user=dn, password=password,
            authentication=ldap3.SIMPLE, receive_timeout=math.ceil(self.section.timeout_s),
            read_only=True,
        )  # fmt: skip
        try:
            return bool(connection.bind())
        finally:
            connection.unbind()


def directory_passwords(ldap: LdapSection | None) -> Callable[[str, str], bool] | None:
    """How a person's directory password is checked at sign-in: an LDAP bind when
    ``[directory.ldap]`` is set, else not at all."""
    return None if ldap is None else LdapPasswords(ldap).check


def _is_entry(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "searchResEntry"
