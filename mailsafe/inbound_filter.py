"""The receive filters where the mail is read: in the render worker, under its limits.

``filter_message(raw, rules, job, options)`` parses the mail once, reads what the rules need
(the envelope, headers and attachment list always; the text of every place only when a rule's
condition reads it), decides per recipient (``mailsafe.inbound_rules``), groups the recipients
by decision, and renders each group's package from the same parse:

* carried (allow, monitor): the mail with the decision's ``mask`` types masked;
* hold: the preview for the approvers, every personal-data type masked;
* block: the header block only (the notice a recipient gets names the sender and subject).

Only msgpack crosses back to the parent (``encode_reply``); the parent decodes it as it would
anything from a process that read hostile input (``decode_reply``): every value checked, every
group's recipients a part of the job's, every package through ``decode_package``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import msgpack

from mailsafe.errors import HostileInput
from mailsafe.extract import ExtractLimits, FileReadings, extract_locations
from mailsafe.inbound_rules import (
    InboundDecision,
    InboundRuleSet,
    Membership,
    RecipientGroup,
    decide_recipients,
    needs_mail_text,
    parse_inbound_rules,
)
from mailsafe.mime import ParsedMail, parse_message
from mailsafe.office.converter import DocumentConverter
from mailsafe.payload import (
    PACKAGE_VERSION,
    Manifest,
    PackageLimits,
    RenderedMail,
    decode_package,
    encode_package,
)
from mailsafe.pii import PII_TYPES, Finding, PiiType, detect, mask_text
from mailsafe.policy import MailFacts, RulesError, SenderInfo
from mailsafe.render import headers_of, render_parsed, with_document_values
from mailsafe.render.masking.documents import FirstReading
from mailsafe.render.options import RenderOptions
from mailsafe.scan import ReadMail, envelope_facts, read_mail

__all__ = [
    "MAX_PACKAGES",
    "PREVIEW_MASK",
    "FilterJob",
    "FilterResult",
    "FilteredPart",
    "ReplyRefused",
    "RulesCache",
    "RulesUnknown",
    "decide_message",
    "decode_job",
    "decode_reply",
    "encode_job",
    "encode_reply",
    "fallback_groups",
    "filter_message",
    "headers_package",
    "parse_published",
    "serve_job",
]

# Carried renderings of one mail with different masks (recipients whose rules mask different
# types); the parts past this share one rendering with the union of their masks (more masked,
# never less). Two are the real case: a desk exempt from masking, and everyone else.
MAX_CARRIED_RENDERINGS: Final = 2
# Packages one reply carries: the carried renderings, one preview, one header block.
MAX_PACKAGES: Final = MAX_CARRIED_RENDERINGS + 2
# Approvers see a held mail with every type of personal data masked (issue 17.4).
PREVIEW_MASK: Final[tuple[PiiType, ...]] = PII_TYPES
# Extraction inside a render worker: the worker's own limits stop a runaway; reading the
# attachments gets less than half of the agent's 60 s, so rendering still has its time.
FILTER_EXTRACT_LIMITS: Final = ExtractLimits(max_seconds=20.0)
# A decision's explanation as it crosses back (audit details are cut to 300 characters).
MAX_EXPLANATION_CHARS: Final = 2000
_RULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LIMITS: Final = PackageLimits()


class RulesUnknown(Exception):
    """The worker does not hold the rules of this version: the parent sends them again."""


@dataclass(frozen=True)
class FilterJob:
    """One mail to filter: the policy (its text only when the worker may not have it) and
    the SMTP envelope the outer agent recorded."""

    policy_version: int
    rules: str | None
    mail_from: str
    rcpts: tuple[str, ...]


@dataclass(frozen=True)
class FilteredPart:
    """The recipients of one decision, and the package made for them."""

    rcpts: tuple[str, ...]
    decision: InboundDecision
    masked: tuple[PiiType, ...]  # of the decision's mask, the types the text shown held
    package: int  # index into FilterResult.packages


@dataclass(frozen=True)
class FilterResult:
    parts: tuple[FilteredPart, ...]
    packages: tuple[RenderedMail, ...]


# ---- in the worker ------------------------------------------------------------------------


class RulesCache:
    """The worker's parsed rules, by policy version (a policy changes seldom; parsing the text
    for every mail would cost more than the rules)."""

    def __init__(self) -> None:
        self._rules: dict[int, InboundRuleSet] = {}

    def get(self, version: int, text: str | None) -> InboundRuleSet:
        if version not in self._rules:
            if text is None:
                raise RulesUnknown(f"policy version {version}")
            self._rules = {version: parse_published(text, version)}  # keep only the newest
        return self._rules[version]


def parse_published(text: str, version: int) -> InboundRuleSet:
    """A policy's rules text as the outer agent received it (``RulesError`` if it is bad)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"policy {version}: not valid TOML ({exc})") from None
    return parse_inbound_rules(document, f"policy {version}", published=True)


def serve_job(
    header: bytes,
    raw: bytes,
    options: RenderOptions,
    cache: RulesCache,
    converter: DocumentConverter | None = None,
) -> bytes:
    """The worker's answer to one filter job (``encode_reply``); RulesUnknown propagates."""
    job = decode_job(header)
    rules = cache.get(job.policy_version, job.rules)
    return encode_reply(filter_message(raw, rules, job, options, converter=converter))


def filter_message(
    raw: bytes,
    rules: InboundRuleSet,
    job: FilterJob,
    options: RenderOptions,
    limits: ExtractLimits = FILTER_EXTRACT_LIMITS,
    *,
    converter: DocumentConverter | None = None,
) -> FilterResult:
    """Decide for every recipient and render each part's package (see the module text);
    office documents become pages through ``converter``."""
    mail = parse_message(raw)
    first = _Kept()
    facts = _facts(mail, rules, job, limits, first)
    groups = decide_recipients(rules, facts, job.rcpts, Membership.of(rules.resolved))
    return _render_parts(mail, groups, options, converter, FirstReading(first.files, first.found))


def _facts(
    mail: ParsedMail,
    rules: InboundRuleSet,
    job: FilterJob,
    limits: ExtractLimits,
    first: _Kept,
) -> MailFacts:
    """What the rules look at (the mail's text only when a condition reads it); what each
    file held and the findings of each text go into ``first``, for masking to take (D105)."""
    return _read(mail, job, limits, read_text=needs_mail_text(rules), first=first)[0]


@dataclass
class _Kept:
    """What the rules' reading of a mail read, kept for masking (``FirstReading``)."""

    files: FileReadings = field(default_factory=dict)
    found: dict[str, list[Finding]] = field(default_factory=dict)


def _read(
    mail: ParsedMail,
    job: FilterJob,
    limits: ExtractLimits,
    *,
    read_text: bool,
    first: _Kept | None = None,
) -> tuple[MailFacts, ReadMail | None]:
    authors = tuple(address.addr for address in mail.from_ if address.addr)
    sender = SenderInfo(job.mail_from or (authors[0] if authors else ""))
    recipients = tuple(dict.fromkeys([*job.rcpts, *(a.addr for a in (*mail.to, *mail.cc))]))
    if not read_text:
        return envelope_facts(mail, sender, recipients, authors), None
    kept = first or _Kept()
    read = read_mail(mail, extract_locations(mail, limits, readings=kept.files), kept.found)
    return read.facts(sender, recipients, authors), read


def decide_message(
    raw: bytes,
    rules: InboundRuleSet,
    job: FilterJob,
    membership: Membership,
    limits: ExtractLimits = FILTER_EXTRACT_LIMITS,
) -> tuple[tuple[RecipientGroup, ...], ReadMail]:
    """The decisions alone, in this process, with every place read (``maildiode scan
    --direction in``: a file on an administrator's disk, not mail arriving)."""
    mail = parse_message(raw)
    recipients = job.rcpts or tuple(a.addr for a in (*mail.to, *mail.cc) if a.addr)
    facts, read = _read(mail, replace(job, rcpts=recipients), limits, read_text=True)
    if read is None:  # read_text=True always reads
        raise RuntimeError("mail not read")
    return decide_recipients(rules, facts, recipients, membership), read


def _render_parts(
    mail: ParsedMail,
    groups: Sequence[RecipientGroup],
    options: RenderOptions,
    converter: DocumentConverter | None,
    first: FirstReading,
) -> FilterResult:
    variants = _variants(groups)
    # The documents' values are read once for every package (each keeps its own types), or
    # taken from the rules' reading of the same files.
    every_mask = frozenset(kind for _, mask in variants.values() for kind in mask)
    if every_mask:
        options = with_document_values(mail, options, every_mask, first)
    packages: list[RenderedMail] = []
    index: dict[tuple[str, tuple[PiiType, ...]], int] = {}
    parts: list[FilteredPart] = []
    for group in groups:
        key = variants[group.decision]
        if key not in index:
            index[key] = len(packages)
            packages.append(_package(mail, key, options, converter))
        package = packages[index[key]]
        masked: tuple[PiiType, ...] = ()
        if group.decision.carried:  # what the rendering masked, as its manifest says
            done = {item.type for item in package.manifest.masked}
            masked = tuple(kind for kind in key[1] if kind in done)
        parts.append(FilteredPart(group.rcpts, group.decision, masked, index[key]))
    return FilterResult(tuple(parts), tuple(packages))


def _variants(
    groups: Sequence[RecipientGroup],
) -> dict[InboundDecision, tuple[str, tuple[PiiType, ...]]]:
    """Each decision's package: ("carried", mask), ("preview", all types), ("notice", ())."""
    carried = list(dict.fromkeys(g.decision.mask for g in groups if g.decision.carried))
    if len(carried) > MAX_CARRIED_RENDERINGS:
        kept = carried[: MAX_CARRIED_RENDERINGS - 1]
        union = tuple(k for k in PII_TYPES if any(k in mask for mask in carried[len(kept) :]))
        merged = {mask: (mask if mask in kept else union) for mask in carried}
    else:
        merged = {mask: mask for mask in carried}
    found: dict[InboundDecision, tuple[str, tuple[PiiType, ...]]] = {}
    for group in groups:
        decision = group.decision
        if decision.carried:
            found[decision] = ("carried", merged[decision.mask])
        elif decision.action == "hold":
            found[decision] = ("preview", PREVIEW_MASK)
        else:
            found[decision] = ("notice", ())
    return found


def _package(
    mail: ParsedMail,
    key: tuple[str, tuple[PiiType, ...]],
    options: RenderOptions,
    converter: DocumentConverter | None,
) -> RenderedMail:
    kind, mask = key
    if kind == "notice":
        return headers_package(mail)
    return render_parsed(mail, replace(options, mask_types=frozenset(mask)), converter)


def headers_package(mail: ParsedMail) -> RenderedMail:
    """The header block alone (a blocked mail's notice shows its sender and subject), every
    type of personal data in it masked: nothing of a mail that is not carried is shown."""
    headers = headers_of(mail)
    masked = replace(
        headers,
        from_=_masked(headers.from_),
        to=_masked(headers.to),
        cc=_masked(headers.cc),
        subject=_masked(headers.subject),
    )
    manifest = Manifest(PACKAGE_VERSION, "", "rendered", None, headers=masked)
    return RenderedMail(manifest=manifest)


def _masked(text: str) -> str:
    found = detect(text)
    return mask_text(text, found) if found else text


# ---- in the parent, when the worker could not answer ---------------------------------------


def fallback_groups(
    rules: InboundRuleSet, job: FilterJob, reason: str
) -> tuple[RecipientGroup, ...]:
    """The decisions for a mail the worker could not read (it crashed, ran out of time or
    memory): the envelope only, and the whole mail unreadable for ``reason`` (``timeout`` or
    ``reader-failed``), so a rule on unreadable mail holds or blocks it. Pure: no mail byte
    is read here."""
    facts = MailFacts(
        sender=SenderInfo(job.mail_from), recipients=job.rcpts, unreadable=(("mail", reason),)
    )
    return decide_recipients(rules, facts, job.rcpts, Membership.of(rules.resolved))


# ---- the frames ---------------------------------------------------------------------------


def encode_job(job: FilterJob) -> bytes:
    document = {
        "v": 1,
        "policy": job.policy_version,
        "rules": job.rules,
        "mail_from": job.mail_from,
        "rcpts": list(job.rcpts),
    }
    return json.dumps(document, ensure_ascii=False).encode()


def decode_job(header: bytes) -> FilterJob:
    """The job as the parent wrote it (the worker trusts its parent)."""
    document = json.loads(header)
    return FilterJob(
        int(document["policy"]),
        document["rules"],
        str(document["mail_from"]),
        tuple(str(r) for r in document["rcpts"]),
    )


def encode_reply(result: FilterResult) -> bytes:
    parts = [_plain_part(part) for part in result.parts]
    packages = [encode_package(package) for package in result.packages]
    return bytes(msgpack.packb({"parts": parts, "packages": packages}, use_bin_type=True))


def _plain_part(part: FilteredPart) -> dict[str, Any]:
    decision = part.decision
    return {
        "rcpts": list(part.rcpts),
        "action": decision.action,
        "rule": decision.rule,
        "explanation": decision.explanation[:MAX_EXPLANATION_CHARS],
        "mask": list(decision.mask),
        "mask_rule": decision.mask_rule,
        "monitored_by": list(decision.monitored_by),
        "silent": decision.silent,
        "approver": decision.approver,
        "masked": list(part.masked),
        "package": part.package,
    }


class ReplyRefused(HostileInput):
    """A filter reply from a render worker did not check out."""

    code = "bad_package"


def decode_reply(
    untrusted: bytes, rcpts: Sequence[str], limits: PackageLimits = _LIMITS
) -> FilterResult:
    """A worker's reply, checked: raises ReplyRefused (or PackageRefused for a package)."""
    try:
        document = msgpack.unpackb(
            untrusted,
            raw=False,
            strict_map_key=True,
            max_bin_len=limits.max_package_bytes,
            max_str_len=MAX_EXPLANATION_CHARS * 4,
            max_array_len=max(len(rcpts), MAX_PACKAGES, 16),
            max_map_len=16,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as exc:
        raise ReplyRefused(f"filter reply is not msgpack ({type(exc).__name__})") from None
    if not isinstance(document, dict) or set(document) != {"parts", "packages"}:
        raise ReplyRefused("filter reply is not a map of parts and packages")
    untrusted_packages = document["packages"]
    if not isinstance(untrusted_packages, list) or not 0 < len(untrusted_packages) <= MAX_PACKAGES:
        raise ReplyRefused("filter reply packages are not a short list")
    packages = tuple(_package_of(p, limits) for p in untrusted_packages)
    parts = _parts(document["parts"], rcpts, len(packages))
    return FilterResult(parts, packages)


def _package_of(untrusted: object, limits: PackageLimits) -> RenderedMail:
    if not isinstance(untrusted, bytes):
        raise ReplyRefused("a filter reply package is not bytes")
    return decode_package(untrusted, limits)


_PART_KEYS: Final = frozenset(
    {
        "rcpts",
        "action",
        "rule",
        "explanation",
        "mask",
        "mask_rule",
        "monitored_by",
        "silent",
        "approver",
        "masked",
        "package",
    }
)


def _parts(untrusted: object, rcpts: Sequence[str], packages: int) -> tuple[FilteredPart, ...]:
    if not isinstance(untrusted, list) or not untrusted:
        raise ReplyRefused("filter reply parts are not a list")
    parts = tuple(_part(item, packages) for item in untrusted)
    named = [r for part in parts for r in part.rcpts]
    if sorted(named) != sorted(dict.fromkeys(rcpts)):
        raise ReplyRefused("filter reply parts do not name each recipient exactly once")
    return parts


def _part(untrusted: object, packages: int) -> FilteredPart:
    if not isinstance(untrusted, dict) or set(untrusted) != _PART_KEYS:
        raise ReplyRefused("a filter reply part has other keys")
    u = untrusted
    decision = InboundDecision(
        action=_choice(u["action"], ("block", "hold", "allow", "monitor")),  # type: ignore[arg-type]
        rule=_rule_id(u["rule"], optional=True),
        explanation=_text(u["explanation"], MAX_EXPLANATION_CHARS),
        mask=_types(u["mask"]),
        mask_rule=_rule_id(u["mask_rule"], optional=True),
        monitored_by=tuple(_rule_id(r) or "" for r in _list(u["monitored_by"], 64)),
        silent=_flag(u["silent"]),
        approver=None
        if u["approver"] is None
        else _choice(  # type: ignore[arg-type]
            u["approver"], ("department_head", "security_officer")
        ),
    )
    index = u["package"]
    if type(index) is not int or not 0 <= index < packages:
        raise ReplyRefused("a filter reply part names no package")
    rcpts = tuple(_text(r, 320) for r in _list(u["rcpts"], 10_000))
    return FilteredPart(rcpts, decision, _types(u["masked"]), index)


def _choice(untrusted: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(untrusted, str) or untrusted not in allowed:
        raise ReplyRefused(f"a filter reply value is not one of {allowed}")
    return untrusted


def _rule_id(untrusted: object, *, optional: bool = False) -> str | None:
    if untrusted is None and optional:
        return None
    if not isinstance(untrusted, str) or not _RULE_ID.fullmatch(untrusted):
        raise ReplyRefused("a filter reply rule id is not a rule id")
    return untrusted


def _text(untrusted: object, limit: int) -> str:
    if not isinstance(untrusted, str) or len(untrusted) > limit:
        raise ReplyRefused("a filter reply text is too long or not text")
    return untrusted


def _flag(untrusted: object) -> bool:
    if type(untrusted) is not bool:
        raise ReplyRefused("a filter reply flag is not true or false")
    return untrusted


def _list(untrusted: object, limit: int) -> list[object]:
    if not isinstance(untrusted, list) or len(untrusted) > limit:
        raise ReplyRefused("a filter reply list is too long or not a list")
    return untrusted


def _types(untrusted: object) -> tuple[PiiType, ...]:
    values = _list(untrusted, len(PII_TYPES))
    if any(v not in PII_TYPES for v in values) or len(set(values)) != len(values):
        raise ReplyRefused("a filter reply names an unknown personal-data type")
    return tuple(kind for kind in PII_TYPES if kind in values)
