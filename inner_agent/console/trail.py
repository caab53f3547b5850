"""A mail's trail read as sentences: each audit step a line in the reader's language, with the
values it names (who decided, which rule, which reason in words), and the details it does not
name still shown as ``key=value`` beside it (an unknown step has no line and keeps them all).

``event_line(step, details, language)`` takes the details as the page shows them (text, cut)
and gives the line as pieces (``(False, words)``, ``(True, value)``) so that the template
escapes every value as it escapes the rest; nothing here is HTML. The exports and the API
keep the events as recorded (their shapes are contracts): this is the page's reading only.

A step may have several lines: the first whose values are all present (and not empty) is
used, so an event recorded with fewer details than usual still reads as a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agentkit.mailindex.export import OUTCOME_LABELS
from mailsafe.notes import REASONS

__all__ = ["TRAIL_LINES", "LinePiece", "TrailLine", "event_line", "reason_text"]

Language = Literal["ko", "en"]
LinePiece = tuple[bool, str]  # (is a value, text)
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class TrailLine:
    """One way to say a step: Korean and English templates naming detail keys as ``{key}``;
    ``also``: keys the sentence makes redundant (not repeated beside it)."""

    ko: str
    en: str
    also: tuple[str, ...] = ()

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(_FIELD.findall(self.ko))


def _line(ko: str, en: str, *also: str) -> TrailLine:
    return TrailLine(ko, en, also)


# step -> its lines, most detailed first; the last usually names nothing.
TRAIL_LINES: dict[str, tuple[TrailLine, ...]] = {
    # -- inbound, outer agent
    "received": (
        _line("외부망 에이전트가 {client}에서 {mail_from}의 메일을 받았습니다 (받는 사람 "
              "{rcpt_count}명).", "The outer agent received the mail of {mail_from} from "
              "{client} ({rcpt_count} recipient(s))."),
        _line("외부망 에이전트가 {client}에서 {mail_from}의 메일을 받았습니다.",
              "The outer agent received the mail of {mail_from} from {client}."),
        _line("외부망 에이전트가 메일을 받았습니다.", "The outer agent received the mail."),
    ),
    "rendered": (
        _line("메일을 그림으로 바꾸지 못했습니다. 사유: {reason}",
              "The mail could not be drawn as pictures. Reason: {reason}", "status"),
        _line("수신 규칙 {rule}에 따라 메일을 그림 {pages}쪽으로 바꿨습니다.",
              "Drawn as {pages} picture page(s) under inbound rule {rule}.", "status"),
        _line("메일을 그림 {pages}쪽으로 바꿨습니다.", "Drawn as {pages} picture page(s).",
              "status"),
        _line("메일을 그림으로 바꿨습니다.", "The mail was drawn as pictures."),
    ),
    "published": (
        _line("내부망으로 보냈습니다 (번들 일련번호 {seq}).",
              "Sent inward over the link (bundle sequence {seq})."),
        _line("내부망으로 보냈습니다.", "Sent inward over the link."),
    ),
    "refused": (
        _line("메일을 거부했습니다. 사유: {reason}", "The mail was refused. Reason: {reason}"),
        _line("메일을 거부했습니다.", "The mail was refused."),
    ),
    # -- inbound, inner agent
    "received_inside": (
        _line("내부망 에이전트가 받아 알림 {notifications}통을 만들었습니다.",
              "The inner agent received it and made {notifications} notification(s)."),
        _line("내부망 에이전트가 받았습니다.", "The inner agent received it."),
    ),
    "notified": (_line("받는 사람에게 보낼 알림을 만들었습니다.",
                       "The notification for the recipients was made."),),
    "injected": (
        _line("{part}번째 알림을 내부 메일 서버에 넘겼습니다 (응답: {reply}).",
              "Notification {part} was handed to the internal mail server (reply: {reply})."),
        _line("알림을 내부 메일 서버에 넘겼습니다.",
              "The notification was handed to the internal mail server."),
    ),
    "deferred": (
        _line("내부 메일 서버가 받지 않아 {retry_in_s}초 뒤 다시 보냅니다. 오류: {error}",
              "The internal mail server did not take it; trying again in {retry_in_s} s. "
              "Error: {error}"),
        _line("내부 메일 서버가 받지 않아 다시 보냅니다.",
              "The internal mail server did not take it; it will be tried again."),
    ),
    "postmaster_notified": (
        _line("관리자({to})에게 알렸습니다.", "The postmaster ({to}) was told."),
        _line("관리자에게 알렸습니다.", "The postmaster was told."),
    ),
    # -- both directions
    "quarantined": (
        _line("격리했습니다. 사유: {reason}", "Quarantined. Reason: {reason}"),
        _line("격리했습니다.", "Quarantined."),
    ),
    "bounced": (
        _line("{rcpt}에게 전달하지 못해 반송했습니다. 사유: {reasons}",
              "Bounced: not delivered to {rcpt}. Reason: {reasons}"),
        _line("반송했습니다.", "Bounced."),
    ),
    "resent": (_line("다시 보냈습니다.", "Sent again."),),
    "requeued": (
        _line("격리에서 꺼내 다시 처리했습니다 (격리 사유: {previous_reason}).",
              "Taken out of quarantine and handled again (it was quarantined for: "
              "{previous_reason})."),
        _line("격리에서 꺼내 다시 처리했습니다.", "Taken out of quarantine and handled again."),
    ),
    # -- outbound, inner agent
    "accepted_outbound": (
        _line("{client}에서 {mail_from}의 발신 메일을 받았습니다 (받는 사람 {rcpt_count}명).",
              "Outbound mail of {mail_from} accepted from {client} ({rcpt_count} "
              "recipient(s))."),
        _line("{client}에서 {mail_from}의 발신 메일을 받았습니다.",
              "Outbound mail of {mail_from} accepted from {client}."),
        _line("발신 메일을 받았습니다.", "Outbound mail accepted."),
    ),
    "scanned": (
        _line("검사했습니다: 개인정보 {findings}건, 규칙 {rule}에 해당합니다.",
              "Scanned: {findings} personal-data finding(s); rule {rule} applies."),
        _line("검사했습니다: 개인정보 {findings}건.", "Scanned: {findings} personal-data "
              "finding(s)."),
        _line("검사했습니다.", "Scanned."),
    ),
    "allowed": (
        _line("규칙 {rule}에 따라 허용했습니다.", "Allowed by rule {rule}."),
        _line("허용했습니다 (해당하는 규칙 없음).", "Allowed (no rule applied)."),
    ),
    "monitored": (
        _line("규칙 {rule}에 따라 보내고 기록했습니다 (모니터링).",
              "Sent and recorded by rule {rule} (monitor)."),
        _line("보내고 기록했습니다 (모니터링).", "Sent and recorded (monitor)."),
    ),
    "blocked": (
        _line("규칙 {rule}에 따라 차단했습니다: {explanation}",
              "Blocked by rule {rule}: {explanation}"),
        _line("규칙 {rule}에 따라 차단했습니다.", "Blocked by rule {rule}."),
        _line("차단했습니다.", "Blocked."),
    ),
    "held": (
        _line("규칙 {rule}에 따라 승인 대기로 보류했습니다. 사유: {reason} ({count}건)",
              "Held for approval by rule {rule}. Reason: {reason} ({count})"),
        _line("규칙 {rule}에 따라 승인 대기로 보류했습니다 (승인 요청 {request_id}).",
              "Held for approval by rule {rule} (request {request_id})."),
        _line("규칙 {rule}에 따라 승인 대기로 보류했습니다.", "Held for approval by rule {rule}."),
        _line("승인 대기로 보류했습니다.", "Held for approval."),
    ),
    "approval_requested": (
        _line("{approvers}에게 승인을 요청했습니다.", "Approval asked of {approvers}."),
        _line("승인을 요청했습니다.", "Approval asked."),
    ),
    "reminded": (
        _line("{approvers}에게 승인을 다시 요청했습니다.", "{approvers} reminded to decide."),
        _line("승인자에게 다시 요청했습니다.", "The approvers were reminded."),
    ),
    "escalated": (
        _line("{to}에게 올렸습니다 ({level}단계 위).", "Escalated to {to} (level {level})."),
        _line("위로 올렸습니다.", "Escalated."),
    ),
    "approved": (
        _line("{acted_by}님이 {by}님을 대신해 승인했습니다.", "Approved by {acted_by} on behalf "
              "of {by}.", "on_behalf"),
        _line("{by}님이 승인했습니다.", "Approved by {by}."),
        _line("승인했습니다.", "Approved."),
    ),
    "rejected": (
        _line("{acted_by}님이 {by}님을 대신해 반려했습니다. 사유: {reason}",
              "Rejected by {acted_by} on behalf of {by}. Reason: {reason}", "on_behalf"),
        _line("{by}님이 반려했습니다. 사유: {reason}", "Rejected by {by}. Reason: {reason}"),
        _line("{by}님이 반려했습니다.", "Rejected by {by}."),
        _line("반려했습니다.", "Rejected."),
    ),
    "withdrawn": (
        _line("{by}님이 발송을 취소했습니다.", "Withdrawn by {by}."),
        _line("발송을 취소했습니다.", "Withdrawn."),
    ),
    "expired": (
        _line("승인 기한이 지났습니다 (승인 요청 {request_id}).",
              "The approval request {request_id} expired."),
        _line("승인 기한이 지났습니다.", "The approval request expired."),
    ),
    "sender_notified": (
        _line("보낸 사람에게 알렸습니다: {outcome}", "The sender was told: {outcome}"),
        _line("보낸 사람에게 알렸습니다.", "The sender was told."),
    ),
    "sent_out": (
        _line("외부망으로 보냈습니다 (일련번호 {seq}, 결정: {decided_by}).",
              "Sent out over the link (sequence {seq}; decided by {decided_by})."),
        _line("외부망으로 보냈습니다.", "Sent out over the link."),
    ),
    "token_refused": (
        _line("승인 링크를 거부했습니다. 사유: {reason}", "An approval link was refused. "
              "Reason: {reason}"),
    ),
    # -- outbound, outer agent
    "received_outbound": (
        _line("외부망 에이전트가 받았습니다 (일련번호 {seq}).",
              "The outer agent received it (sequence {seq})."),
        _line("외부망 에이전트가 받았습니다.", "The outer agent received it."),
    ),
    "delivered": (
        _line("{rcpt}에게 전달했습니다 (시도 {attempts}번).",
              "Delivered to {rcpt} (attempt {attempts})."),
        _line("{rcpt}에게 전달했습니다.", "Delivered to {rcpt}."),
        _line("전달했습니다.", "Delivered."),
    ),
    "delivery_deferred": (
        _line("{rcpt}에게 아직 전달하지 못해 다시 시도합니다. 오류: {error}",
              "Not delivered to {rcpt} yet; trying again. Error: {error}"),
        _line("아직 전달하지 못해 다시 시도합니다.", "Not delivered yet; trying again."),
    ),
    # -- receive filters (issue 17)
    "inbound_monitored": (
        _line("수신 규칙 {rule}에 따라 전달하고 {monitored_by}에게 알렸습니다 (모니터링).",
              "Delivered under inbound rule {rule}; {monitored_by} told (monitor)."),
        _line("수신 규칙 {rule}에 따라 전달하고 기록했습니다 (모니터링).",
              "Delivered and recorded under inbound rule {rule} (monitor)."),
    ),
    "inbound_masked": (
        _line("수신 규칙 {rule}에 따라 개인정보 {count}건을 가렸습니다.",
              "{count} personal-data item(s) masked under inbound rule {rule}."),
        _line("개인정보를 가렸습니다.", "Personal data masked."),
    ),
    "inbound_blocked": (
        _line("수신 규칙 {rule}에 따라 차단했습니다: {explanation}",
              "Blocked by inbound rule {rule}: {explanation}"),
        _line("수신 규칙 {rule}에 따라 차단했습니다.", "Blocked by inbound rule {rule}."),
        _line("차단했습니다.", "Blocked."),
    ),
    "inbound_held": (
        _line("수신 규칙 {rule}에 따라 승인 대기로 보류했습니다 (기한 {expires_at}).",
              "Held for approval by inbound rule {rule} (until {expires_at})."),
        _line("수신 규칙 {rule}에 따라 승인 대기로 보류했습니다.",
              "Held for approval by inbound rule {rule}."),
        _line("승인 대기로 보류했습니다.", "Held for approval."),
    ),
    "inbound_released": (
        _line("{decided_by}님이 승인해 받는 사람에게 보냈습니다.",
              "Approved by {decided_by} and passed on to its recipients."),
        _line("승인되어 받는 사람에게 보냈습니다.", "Approved and passed on to its recipients."),
    ),
    "inbound_dropped": (
        _line("{decided_by}님이 반려해 전달하지 않았습니다.",
              "Rejected by {decided_by}; not passed on."),
        _line("반려되어 전달하지 않았습니다.", "Rejected; not passed on."),
    ),
    "inbound_expired": (
        _line("수신 규칙 {rule}의 승인 기한이 지나 전달하지 않았습니다.",
              "Nobody decided in time (inbound rule {rule}); not passed on."),
        _line("승인 기한이 지나 전달하지 않았습니다.", "Nobody decided in time; not passed on."),
    ),
    "inbound_decision_refused": (
        _line("외부망 에이전트가 승인 결정을 받아들이지 않았습니다. 사유: {code}",
              "The outer agent did not take the decision. Reason: {code}"),
    ),
    "archived": (
        _line("보관 사본을 {to}에 저장했습니다.", "A copy was archived to {to}."),
        _line("보관 사본을 저장했습니다.", "A copy was archived."),
    ),
    "archive_deferred": (
        _line("보관 사본을 {to}에 아직 저장하지 못해 다시 시도합니다. 오류: {error}",
              "The archive copy to {to} is not stored yet; trying again. Error: {error}"),
    ),
    "archive_failed": (
        _line("보관 사본을 {to}에 저장하지 못했습니다. 사유: {reason}",
              "The archive copy to {to} could not be stored. Reason: {reason}"),
    ),
    "hold_requested": (
        _line("수신 규칙 {rule}에 따라 {approvers}에게 승인을 요청했습니다.",
              "Approval asked of {approvers} under inbound rule {rule}."),
        _line("승인을 요청했습니다.", "Approval asked."),
    ),
    "hold_decided": (
        _line("{decided_by}님이 결정했습니다: {action}", "Decided by {decided_by}: {action}"),
        _line("승인자가 결정했습니다.", "An approver decided."),
    ),
    "decision_sent": (
        _line("{decided_by}님의 결정({action})을 외부망 에이전트에 보냈습니다.",
              "{decided_by}'s decision ({action}) was sent to the outer agent."),
        _line("결정을 외부망 에이전트에 보냈습니다.", "The decision was sent to the outer agent."),
    ),
    # -- several outer agents (D74, D75)
    "duplicate_dropped": (
        _line("스트림 {first_stream}(으)로 먼저 도착한 메일이라 다시 전달하지 않았습니다.",
              "Already arrived on stream {first_stream}; not delivered again."),
        _line("먼저 도착한 메일이라 다시 전달하지 않았습니다.",
              "Already arrived; not delivered again."),
    ),
    "stream_takeover": (
        _line("외부망 에이전트 {from_stream}에서 {to_stream}(으)로 옮겼습니다.",
              "Moved from outer agent {from_stream} to {to_stream}."),
    ),
}  # fmt: skip

# Reason codes of the trail that are not rendering reasons (those are mailsafe.notes'), in
# words; an unknown code, or an approver's own words, is shown as written.
REASON_WORDS: dict[str, tuple[str, str]] = {
    "refused_by_internal_server": ("내부 메일 서버가 거부했습니다",
                                   "the internal mail server refused it"),
    "outbound_spool_unreadable": ("발신 대기 파일을 읽을 수 없습니다",
                                  "the outbound spool file could not be read"),
    "no-approver": ("승인할 사람이 없습니다", "there is nobody to approve it"),
    "bad_mail_id": ("메일 ID가 올바르지 않습니다", "the mail id is not valid"),
    "no_recipients": ("받는 사람이 없습니다", "it has no recipients"),
    "unexpected_kind": ("예상하지 않은 종류의 번들입니다", "a bundle of an unexpected kind"),
    "image_decode": ("그림을 읽을 수 없습니다", "a picture could not be decoded"),
    "image_pixels": ("그림이 너무 큽니다", "a picture has too many pixels"),
    "image_type": ("그림 형식이 허용되지 않습니다", "a picture of a type not allowed"),
    "csrf": ("요청 위조 방지 값이 맞지 않습니다", "the anti-forgery token did not match"),
    "not_its_share": ("그 외부망 에이전트가 맡은 메일이 아닙니다",
                      "not a mail that outer agent carried"),
    "outbound_pii_held": ("보내는 메일에서 개인정보가 발견되었습니다",
                          "personal data found in outbound mail"),
}  # fmt: skip

# Keys whose value is a reason code; a decision's maker "system"/"policy" in words.
_REASON_KEYS = frozenset({"reason", "previous_reason", "code"})
_DECIDER_KEYS = frozenset({"by", "decided_by"})
_DECIDERS: dict[str, tuple[str, str]] = {
    "system": ("시스템", "the system"),
    "policy": ("규칙", "the rules"),
}
_NOT_PEOPLE = frozenset(words[0] for words in _DECIDERS.values())
_ACTIONS: dict[str, tuple[str, str]] = {
    "release": ("승인", "approve"),
    "drop": ("반려", "reject"),
    "approve": ("승인", "approve"),
    "reject": ("반려", "reject"),
}


def reason_text(code: str, language: Language) -> str:
    """A reason code in words with the code after it (``변환 시간이 제한을 넘었습니다
    (timeout)``: the code is what the search's reason filter takes); other text as it is."""
    pick = 0 if language == "ko" else 1
    found = REASON_WORDS.get(code)
    if found is not None:
        return f"{found[pick]} ({code})"
    rendering = REASONS.get(code)
    if rendering is not None:
        return f"{rendering[1] if language == 'ko' else rendering[0]} ({code})"
    return code


def _value_text(key: str, value: str, language: Language) -> str:
    pick = 0 if language == "ko" else 1
    if key in _REASON_KEYS:
        return reason_text(value, language)
    if key == "outcome" and value in OUTCOME_LABELS:
        return OUTCOME_LABELS[value][pick]
    if key in _DECIDER_KEYS and value in _DECIDERS:
        return _DECIDERS[value][pick]
    if key == "action" and value in _ACTIONS:
        return _ACTIONS[value][pick]
    return value


def event_line(step: str, details: Sequence[tuple[str, str]], language: Language
               ) -> tuple[list[LinePiece], list[tuple[str, str]]]:  # fmt: skip
    """The line of an event (empty for a step without one) and the details it does not name,
    in their order. ``details``: (key, the value as the page shows it)."""
    values = {key: value for key, value in details if value}
    for line in TRAIL_LINES.get(step, ()):
        if all(key in values for key in line.needs):
            used = {*line.needs, *line.also}
            rest = [(key, value) for key, value in details if key not in used]
            return _pieces(line.ko if language == "ko" else line.en, values, language), rest
    return [], list(details)


def _pieces(template: str, values: Mapping[str, str], language: Language) -> list[LinePiece]:
    parts = _FIELD.split(template)
    pieces: list[LinePiece] = []
    for index, part in enumerate(parts):
        if index % 2:
            pieces.append((True, _value_text(part, values[part], language)))
        elif part:
            after_no_person = bool(pieces) and pieces[-1][1] in _NOT_PEOPLE
            # "시스템이", not "시스템님이": the honorific is for people
            pieces.append((False, part[1:] if after_no_person and part[0] == "님" else part))
    return pieces
