"""The reason a mail was held, in Korean (issue 20.4): not the policy's own English text."""

from __future__ import annotations

import pytest

from inner_agent.outbound.wording import held_because

RRN = {"type": "rrn", "masked": "800101-1******", "where": "attachment:a.xlsx"}
CARD = {"type": "credit_card", "masked": "4111-****-****-1111", "where": "body"}
EXPLANATION = "rule 'personal-data' (approve): 2 personal-data finding(s) >= 1 (rrn x2) in body"


@pytest.mark.parametrize(("decision", "findings", "said"), [
    ({"rule": "personal-data", "explanation": EXPLANATION}, [RRN, RRN],
     "개인정보 규칙: 주민등록번호 2건"),
    ({"rule": "personal-data"}, [CARD, RRN, RRN], "개인정보 규칙: 주민등록번호 2건, 카드번호 1건"),
    ({"rule": "unreadable-attachment"}, [],
     "읽을 수 없는 첨부파일 규칙: 내용을 확인할 수 없는 첨부파일이 있습니다"),
    ({"rule": "site-secret"}, [], "규칙 'site-secret'"),
    ({"rule": None}, [], "기본 정책"),
    ({"rule": "x"}, [{"type": "new_kind"}], "규칙 'x': new_kind 1건"),
])  # fmt: skip
def test_held_because(decision, findings, said):
    assert held_because(decision, findings) == said
    assert "finding(s)" not in held_because(decision, findings)
