"""A rule's scope of people checked against the directory on save (pure): the addresses it
lists that the directory lacks (a typo, someone removed by the HR import) or has disabled
(someone who left, as the LDAP sync marks them). They are a warning, not a refusal: an
address outside the directory can be meant (a shared or system mailbox, an outside partner
an inbound rule names); the editor saves only once the administrator has confirmed exactly
these addresses (decision record "Scope addresses the directory lacks").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["NOT_IN_DIRECTORY", "UnknownAddress", "confirmation_of", "unknown_addresses"]

# The Korean words the editor shows beside each address.
NOT_IN_DIRECTORY: Final = {"missing": "디렉터리에 없음", "disabled": "사용 중지된 사람"}


@dataclass(frozen=True)
class UnknownAddress:
    address: str
    why: Literal["missing", "disabled"]

    @property
    def words(self) -> str:
        return NOT_IN_DIRECTORY[self.why]


def scope_addresses(rule: Mapping[str, Any]) -> list[str]:
    """The addresses a rule of scope ``users`` lists (none for another scope)."""
    if rule.get("scope") != "users":
        return []
    listed = rule.get("users") or []
    return [str(a).strip() for a in listed if str(a).strip()] if isinstance(listed, list) else []


def unknown_addresses(
    addresses: Sequence[str], people: Mapping[str, tuple[str, str, str, bool]]
) -> tuple[UnknownAddress, ...]:
    """The ``addresses`` that are not enabled people of the directory (``people``: those it
    has, by lower-case address, each ending with its disabled mark), in the list's order."""
    found: list[UnknownAddress] = []
    for address in addresses:
        person = people.get(address.lower())
        if person is None:
            found.append(UnknownAddress(address, "missing"))
        elif person[3]:
            found.append(UnknownAddress(address, "disabled"))
    return tuple(found)


def confirmation_of(unknown: Sequence[UnknownAddress]) -> str:
    """What the form's confirmation carries: these exact addresses, so that one added after
    the warning is warned about again (spaces: a browser sends a line break in a value as
    CRLF)."""
    return " ".join(sorted({u.address.lower() for u in unknown}))
