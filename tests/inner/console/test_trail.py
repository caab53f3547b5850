"""A mail's trail read as sentences (inner_agent.console.trail): every step of a mail has a
line in both languages naming the same values, the values it names are taken out of the
``key=value`` list and nothing else is, reasons are in words with their code, and a step or a
key the table does not know is shown as recorded."""

from __future__ import annotations

import pytest

from agentkit.audit import STEPS
from agentkit.mailindex.fold import INBOUND_STEPS, OUTBOUND_STEPS
from inner_agent.console.trail import TRAIL_LINES, TrailLine, event_line, reason_text


def _said(pieces) -> str:
    return "".join(text for _, text in pieces)


def _fields(template: str) -> set[str]:
    return set(TrailLine(template, template).needs)


def test_every_step_of_a_mail_has_a_line_and_every_line_is_of_a_step():
    assert set(TRAIL_LINES) <= STEPS
    assert (INBOUND_STEPS | OUTBOUND_STEPS) - set(TRAIL_LINES) == set()


@pytest.mark.parametrize("step", sorted(TRAIL_LINES))
def test_both_languages_name_the_same_values(step):
    for line in TRAIL_LINES[step]:
        assert _fields(line.ko) == _fields(line.en), (step, line)
        assert not set(line.also) & _fields(line.ko), (step, line)
        for language in ("ko", "en"):
            values = [(key, "x") for key in line.needs]
            pieces, rest = event_line(step, values, language)
            assert pieces, (step, language)
            assert rest == [], (step, language)


def test_the_briefs_example_reads_as_a_sentence_with_its_values():
    details = [("reason", "outbound_pii_held"), ("rule", "outbound-2"), ("count", "3")]
    pieces, rest = event_line("held", details, "ko")
    assert _said(pieces) == (
        "규칙 outbound-2에 따라 승인 대기로 보류했습니다. 사유: 보내는 메일에서 개인정보가 "
        "발견되었습니다 (outbound_pii_held) (3건)"
    )
    assert rest == []
    values = [text for is_value, text in pieces if is_value]
    assert values == ["outbound-2", "보내는 메일에서 개인정보가 발견되었습니다 (outbound_pii_held)",
                      "3"]  # fmt: skip


def test_who_approved_is_named_and_the_rest_stays_beside_it():
    details = [("by", "lee@corp.example"), ("request_id", "r1"), ("extra", "kept")]
    pieces, rest = event_line("approved", details, "ko")
    assert _said(pieces) == "lee@corp.example님이 승인했습니다."
    assert rest == [("request_id", "r1"), ("extra", "kept")]
    pieces, _ = event_line("approved", details, "en")
    assert _said(pieces) == "Approved by lee@corp.example."


def test_a_decision_made_on_someones_behalf_names_both():
    details = [("by", "lee@corp.example"), ("acted_by", "kim@corp.example"),
               ("capacity", "delegate"), ("on_behalf", "kim@corp.example for lee@corp.example")]  # fmt: skip
    pieces, rest = event_line("approved", details, "ko")
    assert _said(pieces) == "kim@corp.example님이 lee@corp.example님을 대신해 승인했습니다."
    assert rest == [("capacity", "delegate")]


def test_a_missing_or_empty_value_falls_back_to_a_plainer_line_and_keeps_the_key():
    pieces, rest = event_line("allowed", [("rule", "")], "ko")
    assert _said(pieces) == "허용했습니다 (해당하는 규칙 없음)."
    assert rest == [("rule", "")]
    pieces, rest = event_line("blocked", [("rule", "card")], "en")
    assert _said(pieces) == "Blocked by rule card."


def test_an_unknown_step_and_unknown_keys_are_shown_as_recorded():
    details = [("reason", "outbound_pii_held"), ("zz", "1")]
    assert event_line("some_new_step", details, "ko") == ([], details)
    _, rest = event_line("quarantined", [("reason", "timeout"), ("zz", "1")], "ko")
    assert rest == [("zz", "1")]


def test_reasons_in_words_with_their_code_and_free_text_as_written():
    assert reason_text("timeout", "ko") == "변환 시간이 제한을 넘었습니다 (timeout)"
    assert (
        reason_text("timeout", "en") == "rendering took longer than the wall-clock limit (timeout)"
    )
    assert reason_text("refused_by_internal_server", "ko") == (
        "내부 메일 서버가 거부했습니다 (refused_by_internal_server)"
    )
    assert reason_text("거래처 요청이 아님", "ko") == "거래처 요청이 아님"
    pieces, _ = event_line("rejected", [("by", "system"), ("reason", "no-approver")], "ko")
    assert _said(pieces) == "시스템이 반려했습니다. 사유: 승인할 사람이 없습니다 (no-approver)"


def test_the_outcome_a_sender_was_told_is_in_words():
    pieces, _ = event_line("sender_notified", [("outcome", "held")], "ko")
    assert _said(pieces) == "보낸 사람에게 알렸습니다: 승인 대기"
    pieces, _ = event_line("sender_notified", [("outcome", "held")], "en")
    assert _said(pieces) == "The sender was told: held"
