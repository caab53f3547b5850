"""The inbound rules travel outward as a signed ``policy`` record (docs/protocol.md §16.5).

At start, every ``[inbound] check_s`` and on SIGHUP, ``PolicyPublisher.check`` reads the rules
file (or the built-in rules), resolves the departments and groups its scopes name from the
directory (``published_text``: a ``[resolved]`` table of addresses is appended, so the outer
agent, which has no directory, knows who is in each scope), and compares the result with what
it published last. When anything changed (the file, or who is in a department), the next
version goes out.

Versions grow across restarts: ``state.dir/inbound-policy.json`` holds the last version, its
digest, its bundle id and whether the link took it, written durably *before* the record is
published. A crash in between publishes the same version again at the next start, byte for
byte (same text, same making time, same bundle id: the link takes it as a repeat); if the
text changed meanwhile, the next version goes out instead (a version may be skipped, never
reused).

A rules file that does not validate is not published: the outer agent keeps enforcing the last
good set, and the refusal is logged and audited (``policy_refused``) once per change of the
file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from agentkit.control import MAX_RULES_BYTES, Policy, encode_control
from agentkit.links import NO_MAIL
from inner_agent.inbound.config import InboundSection
from inner_agent.inbound.errors import PolicyStateError
from mailsafe.inbound_rules import (
    DEFAULT_INBOUND_RULES_TOML,
    InboundRuleSet,
    parse_inbound_text,
    published_text,
    scope_names,
)
from mailsafe.policy import RulesError
from protocol import Kind
from protocol.durable import write_durably
from protocol.limits import BUNDLE_ID_LEN

__all__ = ["PolicyPublisher", "Published", "PublishedPolicy", "resolve_scopes"]

log = logging.getLogger(__name__)

STATE_VERSION: Final = 1


class Publisher(Protocol):
    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class Members(Protocol):
    """What the directory tells about who is where."""

    def users(self) -> Iterable[Any]: ...  # each with .email and .department


@dataclass(frozen=True)
class Published:
    """The last policy put on the link (or about to be)."""

    version: int
    sha256: str
    made_ms: int
    bundle_id: bytes
    done: bool  # the link took it


@dataclass(frozen=True)
class PublishedPolicy:
    """What ``check`` found: the text the outer agent gets, and the rules it holds."""

    text: str
    rules: InboundRuleSet
    sha256: str


def resolve_scopes(
    rules: InboundRuleSet, directory: Members
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The addresses (lower case) of each department and group the rules' scopes name. A
    group's member without ``@`` is a department: its people count."""
    by_department: dict[str, list[str]] = {}
    for user in directory.users():
        by_department.setdefault(user.department, []).append(user.email.lower())
    departments, groups = scope_names(rules)
    resolved_departments = {d: sorted(by_department.get(d, [])) for d in departments}
    resolved_groups = {}
    for name in groups:
        found: set[str] = set()
        for member in rules.groups.get(name, []):
            if "@" in member:
                found.add(member.strip().lower())
            else:
                found.update(by_department.get(member, []))
        resolved_groups[name] = sorted(found)
    return resolved_departments, resolved_groups


class PolicyPublisher:
    def __init__(
        self,
        section: InboundSection,
        directory: Members,
        state_path: Path,
        publisher: Publisher,
        audit: Audit,
        *,
        clock: Callable[[], float] = time.time,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        """``fence``: raises (agentkit.leasekeeper.FenceClosed) once the agent no longer holds
        its state's lease; checked before the state file is written, not only when the link
        is (a version planned by an agent that lost the lease would be the new holder's)."""
        self.section, self.directory, self.state_path = section, directory, state_path
        self.publisher, self.audit, self.clock, self.fence = publisher, audit, clock, fence
        self._next_check = 0.0
        self._refused_digest = ""
        self._now = threading.Event()  # SIGHUP: check at the next pass

    def recheck(self) -> None:
        """Check at the next pass, whatever the timer says (SIGHUP)."""
        self._now.set()

    def due(self) -> bool:
        return self._now.is_set() or time.monotonic() >= self._next_check

    def check(self, *, force: bool = False) -> Published | None:
        """Publish the rules if they changed (or the last publish did not finish); the policy
        on the link, or None when none could be made."""
        if not force and not self.due():
            return self.last()
        self.fence()
        self._now.clear()
        self._next_check = time.monotonic() + self.section.check_s
        found = self.current()
        if found is None:
            return self.last()
        last = self.last()
        if last is not None and last.sha256 == found.sha256:
            return last if last.done else self._publish(last, found)
        version = (last.version if last else 0) + 1
        planned = Published(
            version,
            found.sha256,
            int(self.clock() * 1000),
            secrets.token_bytes(BUNDLE_ID_LEN),
            done=False,
        )
        self._save(planned)  # durable before the link sees it: a version is never reused
        return self._publish(planned, found)

    def current(self) -> PublishedPolicy | None:
        """The text the outer agent would get now; None (logged, audited) when the rules file
        does not validate or the result is too big."""
        path = self.section.rules_file
        name = path.name if path else "built-in inbound rules"
        try:
            authored = path.read_text(encoding="utf-8") if path else DEFAULT_INBOUND_RULES_TOML
            rules = parse_inbound_text(authored, name)
            departments, groups = resolve_scopes(rules, self.directory)
            text = published_text(authored, departments, groups)
            if len(text.encode("utf-8")) > MAX_RULES_BYTES:
                raise RulesError(
                    f"{name}: with its departments and groups resolved it is "
                    f"larger than {MAX_RULES_BYTES} bytes"
                )
            published = parse_inbound_text(text, name, published=True)
        except (OSError, UnicodeDecodeError, RulesError) as exc:
            self._refused(name, str(exc))
            return None
        return PublishedPolicy(text, published, hashlib.sha256(text.encode()).hexdigest())

    def _refused(self, name: str, why: str) -> None:
        digest = hashlib.sha256(why.encode()).hexdigest()
        if digest == self._refused_digest:
            return  # said once per problem, not every check_s
        self._refused_digest = digest
        log.error(
            "ALARM: the inbound rules are not published (%s); the outer agent keeps "
            "the last good set",
            why,
        )
        self.audit.record(NO_MAIL, "policy_refused", code="bad_rules", file=name, detail=why[:300])

    def _publish(self, planned: Published, found: PublishedPolicy) -> Published:
        record = Policy(version=planned.version, made_ms=planned.made_ms, rules=found.text)
        seq = self.publisher.publish(encode_control(record), planned.bundle_id, Kind.CONTROL)
        done = Published(planned.version, planned.sha256, planned.made_ms, planned.bundle_id, True)
        self._save(done)
        self._refused_digest = ""
        self.audit.record(
            NO_MAIL,
            "policy_published",
            version=planned.version,
            seq=seq,
            sha256=planned.sha256,
            rules=len(found.rules.rule),
            bytes=len(found.text.encode()),
        )
        log.info("inbound policy version %d published (seq %d)", planned.version, seq)
        return done

    def last(self) -> Published | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise PolicyStateError(
                f"{self.state_path} is unreadable ({exc}): the policy version "
                "cannot be continued; restore it or remove it knowingly"
            ) from exc
        return Published(
            int(data["version"]),
            str(data["sha256"]),
            int(data["made_ms"]),
            bytes.fromhex(data["bundle_id"]),
            bool(data["done"]),
        )

    def _save(self, published: Published) -> None:
        document = {
            "v": STATE_VERSION,
            "version": published.version,
            "sha256": published.sha256,
            "made_ms": published.made_ms,
            "bundle_id": published.bundle_id.hex(),
            "done": published.done,
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.state_path, json.dumps(document).encode())
