"""Mails the outbound path writes, in Korean: the approval request (the mail's pages with
personal data painted over and where each finding was, masked findings, approve / reject
links), its reminder, and the notices that tell the sender each
decision. Pure: values in, RFC 5322 bytes out. Only masked values ever appear here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from urllib.parse import quote

from inner_agent.outbound.previews import Place, Preview
from inner_agent.ownmail import MARKER_HEADER, OwnMailKind

__all__ = [
    "TYPE_NAMES",
    "RequestMail",
    "approval_request",
    "approver_notice",
    "request_link",
    "sender_notice",
]

PREVIEW_CID = "masked-preview"  # the first page's; the next are masked-preview-2, -3, ...

# How each personal-data type is named to employees.
TYPE_NAMES = {
    "rrn": "주민등록번호",
    "foreigner_id": "외국인등록번호",
    "driver_license": "운전면허번호",
    "passport": "여권번호",
    "credit_card": "카드번호",
    "bank_account": "계좌번호",
    "health_insurance": "건강보험증번호",
    "passport_mrz": "여권 판독영역(MRZ)",
    "phone": "전화번호",
    "email": "이메일 주소",
    "secret": "비밀번호·인증키",
}

# What the sender is told, per outcome: (subject prefix, first sentence).
NOTICE_TEXT = {
    "held": ("[승인 대기]", "외부로 보낸 메일이 보안 정책에 따라 부서장 승인을 기다리고 있습니다."),
    "approved": ("[발송 승인]", "외부로 보낸 메일이 승인되어 발송되었습니다."),
    "rejected": ("[발송 반려]", "외부로 보낸 메일이 반려되어 발송되지 않았습니다."),
    "expired": ("[승인 기한 만료]", "승인 기한 안에 결정이 없어 메일이 발송되지 않았습니다."),
    "escalated": ("[승인 요청 이관]", "승인 기한이 지나 승인 요청이 상위 부서장에게 넘어갔습니다."),
    "blocked": ("[발송 차단]", "외부로 보낸 메일이 보안 정책에 따라 차단되어 발송되지 않았습니다."),
    "withdrawn": (
        "[발송 취소]",
        "승인을 기다리던 메일을 직접 취소했습니다. 메일은 발송되지 않습니다.",
    ),
}

# What an approver is told when their open request closes without them: (subject, sentence).
APPROVER_NOTICE_TEXT = {
    "withdrawn": (
        "[승인 요청 철회]",
        "보낸 사람이 메일을 취소하여 승인 요청이 닫혔습니다. 결정할 필요가 없습니다.",
    ),
}


@dataclass(frozen=True)
class RequestMail:
    """Everything an approval request shows; all text already masked."""

    request_id: str
    mail_id: str
    approver: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    explanation: str
    findings: tuple[tuple[str, str, str], ...]  # (type, masked value, where)
    preview: Preview
    link: str  # base link with the token; "&do=approve" / "&do=reject" are appended
    reminder: bool = False
    # Why a security officer is asked (the envelope sender and From: disagree); "" as usual.
    sender_mismatch: str = ""


def request_link(public_url: str, request_id: str, token: str) -> str:
    return f"{public_url}/requests/{quote(request_id)}?t={quote(token)}"


def _base(from_address: str, to: str, subject: str, now: float) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"maildiode <{from_address}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message[MARKER_HEADER] = OwnMailKind.APPROVAL.value  # never to go out (ownmail)
    return message


def approval_request(req: RequestMail, *, from_address: str, now: float) -> bytes:
    prefix = "[승인 요청 재알림]" if req.reminder else "[승인 요청]"
    message = _base(from_address, req.approver, f"{prefix} {req.sender}: {req.subject}", now)
    approve, reject = f"{req.link}&do=approve", f"{req.link}&do=reject"
    lines = [
        f"{req.sender} 님이 외부로 보낸 메일이 승인을 기다리고 있습니다.",
        "",
        f"받는 사람: {', '.join(req.recipients)}",
        f"제목: {req.subject}",
        f"사유: {req.explanation}",
        *([f"보안 확인: {req.sender_mismatch}"] if req.sender_mismatch else []),
        "",
        "발견된 개인정보 (가려서 표시):",
        *[
            f"  - {TYPE_NAMES.get(kind, kind)}: {value} ({where})"
            for kind, value, where in req.findings
        ],
        "",
        *preview_lines(req.preview),
        "",
        f"승인: {approve}",
        f"반려: {reject}",
        "",
        "링크는 본인만, 한 번만 쓸 수 있으며 기한이 지나면 쓸 수 없습니다. 로그인이 필요합니다.",
        f"요청 번호: {req.request_id} / 메일 ID: {req.mail_id}",
    ]
    message.set_content("\n".join(lines), charset="utf-8")
    message.add_alternative(_request_html(req, approve, reject), subtype="html", charset="utf-8")
    html_part = message.get_body(preferencelist=("html",))
    if not isinstance(html_part, EmailMessage):
        raise TypeError("the html alternative just added is missing")
    for number, page in enumerate(req.preview.pages, start=1):
        subtype = page.media_type.partition("/")[2] or "png"
        html_part.add_related(
            page.data,
            maintype="image",
            subtype=subtype,
            cid=f"<{_cid(number)}>",
            filename=f"masked-preview-{number}.{'jpg' if subtype == 'jpeg' else subtype}",
        )
    return message.as_bytes(policy=SMTP_POLICY)


def _cid(number: int) -> str:
    return PREVIEW_CID if number == 1 else f"{PREVIEW_CID}-{number}"


def place_words(places: Sequence[Place]) -> str:
    """What was painted over on a page: "주민등록번호 1건 가림 (그림에서 읽음)"."""
    return ", ".join(
        f"{TYPE_NAMES.get(p.type, p.type)} {p.count}건 가림"
        + (" (그림에서 읽음)" if p.method == "ocr" else "")
        for p in places
    )


def preview_lines(preview: Preview) -> list[str]:
    """The preview's pages and what was painted on each, and what it leaves out, as text."""
    lines = ["미리보기 (개인정보는 검게 가림):"]
    lines += [f"  - {page.title}: {place_words(page.places) or '가린 곳 없음'}"
              for page in preview.pages]  # fmt: skip
    lines += [f"  - 미리보기에 없음: {item.name} ({item.reason})" for item in preview.left_out]
    return lines


def _request_html(req: RequestMail, approve: str, reject: str) -> str:
    e = html.escape
    mismatch = f"<br>보안 확인: {e(req.sender_mismatch)}" if req.sender_mismatch else ""
    rows = "".join(
        f"<tr><td>{e(TYPE_NAMES.get(kind, kind))}</td><td>{e(value)}</td><td>{e(where)}</td></tr>"
        for kind, value, where in req.findings
    )
    return (
        '<html><body style="font-family:sans-serif">'
        f"<p><b>{e(req.sender)}</b> 님이 외부로 보낸 메일이 승인을 기다리고 있습니다.</p>"
        f"<p>받는 사람: {e(', '.join(req.recipients))}<br>제목: {e(req.subject)}<br>"
        f"사유: {e(req.explanation)}{mismatch}</p>"
        "<table border=1 cellpadding=4>"
        f"<tr><th>종류</th><th>값(가림)</th><th>위치</th></tr>{rows}</table>"
        f'<p><a href="{e(approve)}">승인하기</a> &nbsp; <a href="{e(reject)}">반려하기</a></p>'
        f"{_pages_html(req.preview)}"
        f'<p style="color:#666">요청 번호 {e(req.request_id)}</p></body></html>'
    )


def _pages_html(preview: Preview) -> str:
    e = html.escape
    parts = []
    for number, page in enumerate(preview.pages, start=1):
        painted = place_words(page.places) or "가린 곳 없음"
        parts.append(
            f"<p><b>{e(page.title)}</b> — {e(painted)}<br>"
            f'<img src="cid:{_cid(number)}" alt="개인정보를 가린 미리보기: {e(page.title)}"></p>'
        )
    parts += [
        f"<p>미리보기에 없음: {e(item.name)} ({e(item.reason)})</p>" for item in preview.left_out
    ]
    return "".join(parts)


def sender_notice(
    outcome: str,
    *,
    sender: str,
    subject: str,
    recipients: Sequence[str],
    mail_id: str,
    from_address: str,
    now: float,
    reason: str = "",
    decided_by: str = "",
) -> bytes:
    prefix, first = NOTICE_TEXT[outcome]
    message = _base(from_address, sender, f"{prefix} {subject}", now)
    lines = [first, "", f"받는 사람: {', '.join(recipients)}", f"제목: {subject}"]
    if decided_by:
        lines.append(f"결정한 사람: {decided_by}")
    if reason:
        lines.append(f"사유: {reason}")
    lines += ["", f"메일 ID: {mail_id}"]
    message.set_content("\n".join(lines), charset="utf-8")
    return message.as_bytes(policy=SMTP_POLICY)


def approver_notice(
    outcome: str,
    *,
    approver: str,
    sender: str,
    subject: str,
    request_id: str,
    from_address: str,
    now: float,
) -> bytes:
    """Tells ``approver`` that the request from ``sender`` closed without them (withdrawn)."""
    prefix, first = APPROVER_NOTICE_TEXT[outcome]
    message = _base(from_address, approver, f"{prefix} {sender}: {subject}", now)
    lines = [first, "", f"보낸 사람: {sender}", f"제목: {subject}", "", f"요청 번호: {request_id}"]
    message.set_content("\n".join(lines), charset="utf-8")
    return message.as_bytes(policy=SMTP_POLICY)
