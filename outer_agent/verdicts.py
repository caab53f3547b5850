"""A filtered mail's parts and the verdict that made them, kept across a crash.

The receive filters may split a mail: recipients with different decisions get different parts
(one carried, one held, one blocked...). Part 0 keeps the mail's id and bundle id; part ``N``
is ``MAIL-N`` with a bundle id derived from the mail's, so a mail filtered again after a crash
makes the same parts under the same ids, which the link de-duplicates.

The verdict is stored (``inbound/verdicts/MAIL``) before the first effect of a verdict that is
not "one part, carried" (a hold, a block, a split), and removed after the mail's copy in the
spool is gone. A mail claimed again after a crash reuses it, so a policy that changed in the
meantime cannot hold a mail that was already blocked, or carry one that was already held. A
"one part, carried" verdict is not stored (it would cost a file per mail): the mail was
published under its own bundle id, and ``Filtering`` checks the link for that id instead.

Written without fsync: it must survive a kill of the agent (the kernel has it), not an
operating-system crash, after which at worst a policy change in the same instant decides a
mail twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mailsafe.inbound_rules import InboundDecision
from protocol.durable import write_durably
from protocol.limits import BUNDLE_ID_LEN

__all__ = ["Part", "Verdict", "VerdictStore", "derived_bundle_id", "part_id"]

log = logging.getLogger(__name__)

VERDICT_VERSION: Final = 1


def part_id(mail_id: str, index: int) -> str:
    return mail_id if index == 0 else f"{mail_id}-{index}"


def derived_bundle_id(bundle_id: bytes, what: str) -> bytes:
    """A bundle id of its own for ``what`` of a mail (a part, a notice), always the same."""
    return hashlib.sha256(b"maildiode-inbound\0" + bundle_id + what.encode()).digest()[
        :BUNDLE_ID_LEN
    ]


@dataclass(frozen=True)
class Part:
    """The recipients of one decision, as one mail of their own."""

    index: int
    mail_id: str
    bundle_id: bytes
    rcpts: tuple[str, ...]
    decision: InboundDecision
    found: tuple[str, ...]  # personal-data types the worker found among those masked

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "index": self.index,
            "mail_id": self.mail_id,
            "bundle_id": self.bundle_id.hex(),
            "rcpts": list(self.rcpts),
            "action": d.action,
            "rule": d.rule,
            "explanation": d.explanation,
            "mask": list(d.mask),
            "mask_rule": d.mask_rule,
            "monitored_by": list(d.monitored_by),
            "silent": d.silent,
            "approver": d.approver,
            "found": list(self.found),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Part:
        decision = InboundDecision(
            action=data["action"],
            rule=data["rule"],
            explanation=str(data["explanation"]),
            mask=tuple(data["mask"]),
            mask_rule=data["mask_rule"],
            monitored_by=tuple(data["monitored_by"]),
            silent=bool(data["silent"]),
            approver=data["approver"],
        )
        return cls(
            int(data["index"]),
            str(data["mail_id"]),
            bytes.fromhex(data["bundle_id"]),
            tuple(data["rcpts"]),
            decision,
            tuple(data["found"]),
        )


@dataclass(frozen=True)
class Verdict:
    policy_version: int
    parts: tuple[Part, ...]

    @property
    def trivial(self) -> bool:
        """One part, carried: nothing to remember (the link has it under the mail's id)."""
        return len(self.parts) == 1 and self.parts[0].decision.carried

    @classmethod
    def of(
        cls,
        policy_version: int,
        mail_id: str,
        bundle_id: bytes,
        groups: Sequence[tuple[tuple[str, ...], InboundDecision, tuple[str, ...]]],
    ) -> Verdict:
        """Parts from (recipients, decision, found types) in order; part 0 is the mail's."""
        parts = tuple(
            Part(
                n,
                part_id(mail_id, n),
                bundle_id if n == 0 else derived_bundle_id(bundle_id, f"part-{n}"),
                rcpts,
                decision,
                found,
            )
            for n, (rcpts, decision, found) in enumerate(groups)
        )
        return cls(policy_version, parts)


class VerdictStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def save(self, mail_id: str, verdict: Verdict) -> None:
        document = {
            "v": VERDICT_VERSION,
            "policy_version": verdict.policy_version,
            "parts": [part.to_json() for part in verdict.parts],
        }
        write_durably(
            self.root / mail_id,
            json.dumps(document, ensure_ascii=False).encode(),
            sync_file=False,
            sync_folder=False,
        )

    def load(self, mail_id: str) -> Verdict | None:
        try:
            document = json.loads((self.root / mail_id).read_text(encoding="utf-8"))
            return Verdict(
                int(document["policy_version"]), tuple(Part.from_json(p) for p in document["parts"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "the stored verdict of %s is unreadable (%s); filtering it again", mail_id, exc
            )
            return None

    def remove(self, mail_id: str) -> None:
        (self.root / mail_id).unlink(missing_ok=True)

    def prune(self, waiting: set[str]) -> int:
        """At start: verdicts of mails no longer in the spool (a crash after the mail's copy
        went and before its verdict did)."""
        pruned = 0
        for name in os.listdir(self.root):
            if name not in waiting:
                (self.root / name).unlink(missing_ok=True)
                pruned += 1
        return pruned
