"""Who an outbound mail shows as its sender, and whether the envelope agrees. Pure: addresses
and a directory lookup in, a ``SenderCheck`` out.

The envelope sender (``MAIL FROM``) is who submitted the mail to the internal server; the
``From:`` header is who the recipients see. Approvers used to be chosen from the envelope
alone, so ``MAIL FROM:<kim@…>`` with ``From: lee@…`` asked lee, kim's head, to approve lee's
own mail (issue 15.5). Now both are resolved in the directory: when they are the same person
(or there is no ``From:`` at all) nothing changes; when they are different people, or one of
them is not in the directory (a null envelope sender included), the check says why, and a
held mail goes to a security officer instead of the department head.

Addresses are compared as a reader tells them apart (``mailsafe.lookalike.comparable``), so
``lee＠corp.example``, ``lee\\u200b@corp.example`` or a Cyrillic ``е`` in it is lee.
Addresses written into a ``From:`` display name (``"lee@corp.example" <kim@corp.example>``)
count as shown too: a directory user named there who is not the envelope sender is a
mismatch, and nobody shown there is ever asked to approve the mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inner_agent.outbound.directory import User
from mailsafe import lookalike
from mailsafe.mime import Address

__all__ = ["SenderCheck", "check_sender", "comparable", "stored_check"]

# An address as people write one into a display name (after normalisation).
_ADDRESS_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class SenderCheck:
    envelope: str  # comparable form; "" for a null sender (a bounce)
    shown: tuple[str, ...]  # every address shown as the sender: envelope, From:, display names
    user: User | None  # the envelope sender in the directory
    mismatch: str  # "" when envelope and From: are the same person; else why not

    def to_json(self) -> dict[str, object]:
        return {"shown": list(self.shown), "mismatch": self.mismatch}


def comparable(address: str) -> str:
    """``address`` as compared: what a reader tells apart (``mailsafe.lookalike``: invisible
    and bidi-control characters removed, NFKC, homoglyphs mapped, case folded), trimmed."""
    return lookalike.comparable(address).strip()


def check_sender(
    envelope: str, header_from: Sequence[Address], lookup: Callable[[str], User | None]
) -> SenderCheck:
    """Resolve the envelope sender and every ``From:`` address; say why they disagree."""
    sender = comparable(envelope)
    user = lookup(sender) if sender else None
    in_names = [
        found for a in header_from for found in _ADDRESS_IN_TEXT.findall(comparable(a.display))
    ]
    shown = _unique([sender, *(comparable(a.addr) for a in header_from), *in_names])
    mismatch = ""
    for address in header_from:
        mismatch = mismatch or _header_mismatch(sender, user, comparable(address.addr), lookup)
    for named in in_names:
        mismatch = mismatch or _name_mismatch(sender, user, named, lookup)
    return SenderCheck(sender, tuple(a for a in shown if a), user, mismatch)


def stored_check(decision: Mapping[str, Any], envelope: str) -> tuple[frozenset[str], str]:
    """(shown, mismatch) as ``SenderCheck.to_json`` stored them with the scan's decision; for a
    row stored before the check existed, the envelope alone and no mismatch."""
    check = decision.get("sender")
    if not isinstance(check, dict):
        return frozenset({comparable(envelope)}), ""
    return frozenset(str(a) for a in check.get("shown", ())), str(check.get("mismatch", ""))


def _header_mismatch(
    sender: str, user: User | None, shown: str, lookup: Callable[[str], User | None]
) -> str:
    if not shown:
        return f"From: 주소를 읽을 수 없습니다 (From: unreadable; envelope sender {sender or '<>'})"
    other = lookup(shown)
    if _same_person(sender, user, shown, other):
        return ""
    return (
        f"보내는 사람 불일치: 봉투 {sender or '<>'}, From: {shown} "
        f"(envelope sender and From: are {_how_different(user, other)})"
    )


def _name_mismatch(
    sender: str, user: User | None, named: str, lookup: Callable[[str], User | None]
) -> str:
    other = lookup(named)
    if other is None or (user is not None and other.email == user.email):
        return ""  # an address nobody here has, or the sender's own
    return (
        f"보내는 사람 불일치: 봉투 {sender or '<>'}, From: 이름에 {named} "
        "(the From: display name shows another person)"
    )


def _same_person(sender: str, user: User | None, shown: str, other: User | None) -> bool:
    if user is not None or other is not None:
        return user is not None and other is not None and user.email == other.email
    return bool(sender) and sender == shown  # both unknown: the same address at least


def _how_different(user: User | None, other: User | None) -> str:
    if user is not None and other is not None:
        return "different people"
    if user is None and other is None:
        return "different addresses, neither in the directory"
    return "not both in the directory"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
