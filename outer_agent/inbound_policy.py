"""The inbound policy the outer agent enforces: the last good ``policy`` record from inside,
kept durably (docs/protocol.md §16.5).

A record is applied only when its rules parse in their published form (``bad_rules``
otherwise) and its version is above the one held (``stale`` below, ``conflict`` at the same
version with other rules, a duplicate at the same version with the same rules). The new set is
written to ``spool.dir/policy.json`` (temp, fsync, rename) before it is enforced, so a restart
enforces the last good set; until a first policy arrives, none is enforced (version 0: every
mail is carried as before issue 17).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from agentkit.control import Policy
from mailsafe.inbound_filter import parse_published
from mailsafe.inbound_rules import InboundRuleSet
from mailsafe.policy import RulesError
from protocol.durable import write_durably

__all__ = ["HeldPolicy", "PolicyOutcome", "PolicyStore"]

log = logging.getLogger(__name__)

STORE_VERSION: Final = 1

Code = Literal["applied", "duplicate", "bad_rules", "conflict", "stale"]


@dataclass(frozen=True)
class HeldPolicy:
    """The policy in force: its version, its rules as received, and those rules parsed."""

    version: int
    made_ms: int
    text: str
    rules: InboundRuleSet

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PolicyOutcome:
    code: Code
    detail: str

    @property
    def refused(self) -> bool:
        return self.code in ("bad_rules", "conflict", "stale")


class PolicyStore:
    """The held policy (thread-safe: readers get an immutable ``HeldPolicy``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._held = self._load()

    @property
    def held(self) -> HeldPolicy | None:
        return self._held

    @property
    def version(self) -> int:
        held = self._held
        return 0 if held is None else held.version

    def apply(self, policy: Policy) -> PolicyOutcome:
        """Verify ``policy`` against the held one (§16.5) and, if newer, keep and enforce it."""
        with self._lock:
            held = self._held
            current = 0 if held is None else held.version
            if held is not None and policy.version == current:
                if policy.rules == held.text:
                    return PolicyOutcome("duplicate", f"version {current} again")
                return PolicyOutcome("conflict", f"version {current} with other rules")
            if policy.version < current:
                return PolicyOutcome("stale", f"version {policy.version} is older than {current}")
            try:
                rules = parse_published(policy.rules, policy.version)
            except RulesError as exc:
                return PolicyOutcome("bad_rules", str(exc)[:300])
            new = HeldPolicy(policy.version, policy.made_ms, policy.rules, rules)
            self._save(new)  # durable first: a restart enforces what was enforced
            self._held = new
        return PolicyOutcome("applied", f"version {policy.version} in force")

    def _save(self, held: HeldPolicy) -> None:
        document = {
            "v": STORE_VERSION,
            "version": held.version,
            "made_ms": held.made_ms,
            "sha256": held.digest,
            "rules": held.text,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, json.dumps(document, ensure_ascii=False).encode("utf-8"))

    def _load(self) -> HeldPolicy | None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error(
                "ALARM: the inbound policy %s cannot be read (%s); none is enforced until "
                "the inner agent publishes a newer one",
                self.path,
                exc,
            )
            return None
        try:
            held = _held_from(document)
        except (KeyError, TypeError, ValueError, RulesError) as exc:
            log.error(
                "ALARM: the inbound policy %s is not a good set (%s); none is enforced "
                "until the inner agent publishes a newer one",
                self.path,
                exc,
            )
            return None
        log.info("inbound policy version %d in force (%s)", held.version, self.path)
        return held


def _held_from(document: object) -> HeldPolicy:
    if not isinstance(document, dict) or document.get("v") != STORE_VERSION:
        raise ValueError("not a policy store of version 1")
    text, version = str(document["rules"]), int(document["version"])
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != document["sha256"]:
        raise ValueError("its rules do not match their digest")
    return HeldPolicy(version, int(document["made_ms"]), text, parse_published(text, version))
