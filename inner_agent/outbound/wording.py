"""Why a mail was held, in words an approver or employee reads: "개인정보 규칙: 주민등록번호
2건" rather than the policy's ``rule 'personal-data' (approve): 2 personal-data finding(s) >=
1 (rrn x2) in ...``. Pure: the stored decision and (masked) findings in, one Korean line out.
The policy's own text stays in the database and the audit log for administrators."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from inner_agent.outbound.notice_mail import TYPE_NAMES

__all__ = ["RULE_NAMES", "held_because"]

# The built-in rules' names; a site's own rules are shown by their id (its description is not
# stored with the decision).
RULE_NAMES = {
    "personal-data": "개인정보 규칙",
    "unreadable-attachment": "읽을 수 없는 첨부파일 규칙",
}


def held_because(decision: Mapping[str, Any], findings: Sequence[Mapping[str, str]]) -> str:
    """One line: the rule's name, then what was found per type, in TYPE_NAMES order."""
    rule = decision.get("rule")
    name = RULE_NAMES.get(str(rule), f"규칙 '{rule}'") if rule else "기본 정책"
    counts = Counter(str(f.get("type", "")) for f in findings)
    found = [f"{TYPE_NAMES[kind]} {counts[kind]}건" for kind in TYPE_NAMES if counts[kind]]
    found += [f"{kind} {n}건" for kind, n in sorted(counts.items()) if kind not in TYPE_NAMES]
    if found:
        return f"{name}: {', '.join(found)}"
    if rule == "unreadable-attachment":
        return f"{name}: 내용을 확인할 수 없는 첨부파일이 있습니다"
    return name
