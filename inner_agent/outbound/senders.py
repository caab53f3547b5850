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

A mismatch **holds** the mail by itself (``SenderCheck.holds``; ``[outbound] sender_mismatch``
decides whether it does) when the addresses shown name two different directory people, or an
address in our own domains (the directory's) that no directory person has. A vacation reply
(RFC 3834: null envelope sender, ``Auto-Submitted: auto-replied``, one ``From:`` of a
directory user and nobody else shown) is not a mismatch: it is that user's mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inner_agent.outbound.directory import User
from mailsafe import lookalike
from mailsafe.mime import Address

__all__ = [
    "SenderCheck",
    "check_sender",
    "comparable",
    "domain_of",
    "stored_check",
    "stored_sender",
]

# An address as people write one into a display name (after normalisation).
_ADDRESS_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class SenderCheck:
    envelope: str  # comparable form; "" for a null sender (a bounce)
    shown: tuple[str, ...]  # every address shown as the sender: envelope, From:, display names
    user: User | None  # who sends in the directory: the envelope's, or an auto-reply's From:
    mismatch: str  # "" when envelope and From: are the same person; else why not
    holds: bool = False  # the mismatch shows two people, or an address of ours nobody has
    auto_reply: bool = False  # a vacation reply of ``user`` (null envelope, RFC 3834)

    @property
    def address(self) -> str:
        """Whose rules decide: the envelope sender, or the person an auto-reply is from."""
        return self.user.email if self.auto_reply and self.user else self.envelope

    def to_json(self) -> dict[str, object]:
        found: dict[str, object] = {"shown": list(self.shown), "mismatch": self.mismatch,
                                    "holds": self.holds}  # fmt: skip
        if self.auto_reply:
            found["auto_reply"] = self.address
        return found


def comparable(address: str) -> str:
    """``address`` as compared: what a reader tells apart (``mailsafe.lookalike``: invisible
    and bidi-control characters removed, NFKC, homoglyphs mapped, case folded), trimmed."""
    return lookalike.comparable(address).strip()


def check_sender(
    envelope: str,
    header_from: Sequence[Address],
    lookup: Callable[[str], User | None],
    *,
    our_domains: Collection[str] = (),
    auto_replied: bool = False,
) -> SenderCheck:
    """Resolve the envelope sender and every ``From:`` address; say why they disagree and
    whether that holds the mail. ``auto_replied``: the mail says ``Auto-Submitted:
    auto-replied``; ``our_domains``: the directory's mail domains (lower-case)."""
    sender = comparable(envelope)
    user = lookup(sender) if sender else None
    in_names = [
        found for a in header_from for found in _ADDRESS_IN_TEXT.findall(comparable(a.display))
    ]
    shown = tuple(a for a in _unique([sender, *(comparable(a.addr) for a in header_from),
                                      *in_names]) if a)  # fmt: skip
    if not sender and auto_replied and (replier := _auto_replier(header_from, shown, lookup)):
        return SenderCheck(sender, shown, replier, "", auto_reply=True)
    mismatch = ""
    for address in header_from:
        mismatch = mismatch or _header_mismatch(sender, user, comparable(address.addr), lookup)
    for named in in_names:
        mismatch = mismatch or _name_mismatch(sender, user, named, lookup)
    holds = bool(mismatch) and _two_people_or_nobody_of_ours(shown, lookup, our_domains)
    return SenderCheck(sender, shown, user, mismatch, holds)


def domain_of(address: str) -> str:
    return comparable(address).rpartition("@")[2]


def stored_check(decision: Mapping[str, Any], envelope: str) -> tuple[frozenset[str], str]:
    """(shown, mismatch) as ``SenderCheck.to_json`` stored them with the scan's decision; for a
    row stored before the check existed, the envelope alone and no mismatch."""
    check = decision.get("sender")
    if not isinstance(check, dict):
        return frozenset({comparable(envelope)}), ""
    return frozenset(str(a) for a in check.get("shown", ())), str(check.get("mismatch", ""))


def stored_sender(decision: Mapping[str, Any], envelope: str) -> str:
    """Whose department a stored mail belongs to: the envelope sender, or the person an
    auto-reply is from."""
    check = decision.get("sender")
    replier = check.get("auto_reply") if isinstance(check, dict) else None
    return str(replier) if replier else envelope


def _auto_replier(
    header_from: Sequence[Address], shown: tuple[str, ...], lookup: Callable[[str], User | None]
) -> User | None:
    """The one directory user an auto-reply shows, or None when it shows anyone else."""
    if len(header_from) != 1 or len(shown) != 1:
        return None
    return lookup(shown[0])


def _two_people_or_nobody_of_ours(
    shown: Sequence[str], lookup: Callable[[str], User | None], our_domains: Collection[str]
) -> bool:
    """Whether the addresses shown name two directory people, or an address in our own
    domains that no directory person has: the mismatches that hold a mail by themselves."""
    people = set()
    for address in shown:
        user = lookup(address)
        if user is None and domain_of(address) in our_domains:
            return True
        if user is not None:
            people.add(user.email)
    return len(people) > 1


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
