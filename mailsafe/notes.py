"""Notes and reasons a reader sees in the notification, in the reader's language.

A rendered mail carries *notes* ("3 remote reference(s) in the HTML were not loaded") and
*reason codes* (why a mail could not be shown, why an attachment was withheld). Notes travel in
the manifest as English text, so the package format stays plain; every note is made here from
a template (:func:`note`), and the inner agent turns it back into the reader's language with
:func:`translate`, which matches the same template. Text that matches no template (a note from
an older outer agent) is shown as it came. Reason codes travel as codes; :func:`reason_words`
gives the words.

Pure data and string work; the values filled into templates are the caller's to escape.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = ["LANGUAGES", "NOTES", "REASONS", "note", "note_code", "reason_words", "translate"]

LANGUAGES = ("en", "ko")

# code -> (English, Korean); ``{name}`` marks a value filled in per mail.
NOTES: dict[str, tuple[str, str]] = {
    "too_many_parts": (
        "more than {limit} MIME parts: the rest is not shown",
        "MIME 파트가 {limit}개를 넘어 나머지는 표시하지 않았습니다",
    ),
    "decoded_cut": (
        "decoded content above {limit} bytes was cut",
        "디코딩한 내용이 {limit}바이트를 넘어 잘랐습니다",
    ),
    "raw_cut": (
        "mail larger than {limit} bytes: only the start was parsed",
        "메일이 {limit}바이트보다 커서 앞부분만 해석했습니다",
    ),
    "mime_unparsable": (
        "the MIME structure could not be parsed ({error})",
        "MIME 구조를 해석하지 못했습니다 ({error})",
    ),
    "mime_too_deep_to_walk": (
        "the MIME structure nests too deeply to walk",
        "MIME 구조가 너무 깊게 중첩되어 있습니다",
    ),
    "mime_unwalkable": (
        "the MIME structure could not be walked ({error})",
        "MIME 구조를 따라가지 못했습니다 ({error})",
    ),
    "header_block_cut": (
        "header block larger than {limit} bytes was cut",
        "헤더가 {limit}바이트를 넘어 잘랐습니다",
    ),
    "bad_header_name": (
        "a header line with an invalid name was dropped",
        "이름이 잘못된 헤더 줄을 버렸습니다",
    ),
    "boundary_folded": (
        "the multipart boundary was folded onto a continuation line: split on it unfolded",
        "MIME 경계(boundary)가 다음 줄로 접혀 있어 펼쳐서 파트를 나눴습니다",
    ),
    "broken_close_boundary": (
        "a broken closing MIME boundary line was removed from the last part",
        "깨진 MIME 닫는 경계 줄을 마지막 파트에서 지웠습니다",
    ),
    "outlook_msg_read": (
        "an Outlook .msg file: shown from its properties (subject, sender, bodies, attachments)",
        "Outlook .msg 파일입니다: 속성(제목, 보낸 사람, 본문, 첨부)으로 표시했습니다",
    ),
    "outlook_msg": (
        "not an RFC 5322 mail: an Outlook .msg (OLE2) file that could not be read",
        "RFC 5322 메일이 아니라 읽을 수 없는 Outlook .msg(OLE2) 파일입니다",
    ),
    "message_partial": (
        "a fragment of a mail split into several (message/partial) is not shown",
        "여러 통으로 나뉜 메일의 일부(message/partial)는 표시하지 않습니다",
    ),
    "text_cut": (
        "text body longer than {limit} characters was cut",
        "텍스트 본문이 {limit}자를 넘어 잘랐습니다",
    ),
    "html_cut": (
        "HTML body longer than {limit} characters was cut",
        "HTML 본문이 {limit}자를 넘어 잘랐습니다",
    ),
    "mime_defect": ("MIME defect: {defect}", "MIME 형식 오류: {defect}"),
    "bad_address_list": (
        "the {header} header is not a valid address list",
        "{header} 헤더의 주소 목록이 올바르지 않습니다",
    ),
    "mime_too_deep": (
        "MIME nesting deeper than {limit} levels is not shown",
        "{limit}단계보다 깊게 중첩된 MIME 파트는 표시하지 않았습니다",
    ),
    "bad_transfer_encoding": (
        "a part's transfer encoding could not be decoded",
        "파트의 전송 인코딩을 디코딩하지 못했습니다",
    ),
    "too_many_images": (
        "more than {limit} images: the rest is not shown",
        "그림이 {limit}개를 넘어 나머지는 표시하지 않았습니다",
    ),
    "byte_budget": (
        "the byte budget of {limit} bytes was reached",
        "그림 용량 한도({limit}바이트)에 이르렀습니다",
    ),
    "tiles_cut": (
        "the mail is longer than {limit} tiles and was cut",
        "메일이 그림 {limit}장보다 길어 뒷부분을 잘랐습니다",
    ),
    "pdf_page_failed": (
        "{name}: page {page} could not be shown",
        "{name}: {page}쪽을 표시하지 못했습니다",
    ),
    "pdf_page_too_large": (
        "{name}: page {page} is {width} x {height} pt, too large to show",
        "{name}: {page}쪽은 {width} x {height}pt 크기로 너무 커서 표시하지 않았습니다",
    ),
    "pdf_pages_capped": (
        "{name}: {shown} of {total} pages shown (page cap {limit})",
        "{name}: 전체 {total}쪽 가운데 {shown}쪽만 표시했습니다(최대 {limit}쪽)",
    ),
    "forward_too_deep": (
        "forwarded mails nested deeper were not shown",
        "더 깊이 전달된 메일은 표시하지 않았습니다",
    ),
    "remote_dropped": (
        "{count} remote reference(s) in the HTML were not loaded",
        "HTML의 외부 참조 {count}개를 불러오지 않았습니다",
    ),
    "inline_images_refused": (
        "{count} inline image(s) could not be decoded",
        "본문 그림 {count}개를 디코딩하지 못했습니다",
    ),
    "smime_signed": (
        "S/MIME signed (the signature was not checked)",
        "S/MIME 서명 메일입니다(서명은 확인하지 않았습니다)",
    ),
    "smime_signed_opaque": (
        "S/MIME signed, opaque, and its signed content could not be read: withheld",
        "S/MIME 불투명 서명 메일인데 서명된 내용을 읽을 수 없어 전달하지 않았습니다",
    ),
    "smime_encrypted": (
        "S/MIME encrypted for its recipient: unreadable without the recipient's key, withheld",
        "S/MIME 암호화 메일입니다: 받는 사람의 개인 키 없이는 읽을 수 없어 전달하지 않았습니다",
    ),
    "pgp_signed": (
        "PGP signed (the signature was not checked)",
        "PGP 서명 메일입니다(서명은 확인하지 않았습니다)",
    ),
    "pgp_encrypted": (
        "PGP encrypted (cannot be shown)",
        "PGP 암호화 메일입니다(표시할 수 없습니다)",
    ),
    "tnef": (
        "an Outlook TNEF (winmail.dat) part could not be read (corrupt or over a limit), withheld",
        "Outlook TNEF(winmail.dat) 파트를 읽을 수 없어(손상되었거나 한도 초과) 전달하지 않았습니다",
    ),
    "tnef_read": (
        "an Outlook TNEF (winmail.dat) part: its body and attachments are shown as the mail's own",
        "Outlook TNEF(winmail.dat) 파트의 본문과 첨부를 메일의 본문과 첨부로 표시했습니다",
    ),
    "masked_rrn": (
        "{count} resident registration number(s) masked in {name}",
        "{name}: 주민등록번호 {count}건을 가렸습니다",
    ),
    "masked_foreigner_id": (
        "{count} foreigner registration number(s) masked in {name}",
        "{name}: 외국인등록번호 {count}건을 가렸습니다",
    ),
    "masked_driver_license": (
        "{count} driver's licence number(s) masked in {name}",
        "{name}: 운전면허번호 {count}건을 가렸습니다",
    ),
    "masked_passport": (
        "{count} passport number(s) masked in {name}",
        "{name}: 여권번호 {count}건을 가렸습니다",
    ),
    "masked_credit_card": (
        "{count} card number(s) masked in {name}",
        "{name}: 카드번호 {count}건을 가렸습니다",
    ),
    "masked_bank_account": (
        "{count} bank account number(s) masked in {name}",
        "{name}: 계좌번호 {count}건을 가렸습니다",
    ),
    "masked_health_insurance": (
        "{count} health-insurance card number(s) masked in {name}",
        "{name}: 건강보험증번호 {count}건을 가렸습니다",
    ),
    "masked_passport_mrz": (
        "{count} passport machine-readable line(s) masked in {name}",
        "{name}: 여권 판독영역(MRZ) {count}줄을 가렸습니다",
    ),
    "masked_phone": (
        "{count} phone number(s) masked in {name}",
        "{name}: 전화번호 {count}건을 가렸습니다",
    ),
    "masked_email": (
        "{count} e-mail address(es) masked in {name}",
        "{name}: 이메일 주소 {count}건을 가렸습니다",
    ),
    "masked_secret": (
        "{count} password(s) or key(s) masked in {name}",
        "{name}: 비밀번호·인증키 {count}건을 가렸습니다",
    ),
    "mask_unchecked_ocr_unavailable": (
        "{name} was not checked for personal data: OCR is not installed",
        "{name}: 개인정보를 확인하지 못했습니다(OCR이 설치되어 있지 않습니다)",
    ),
    "mask_unchecked_ocr_budget": (
        "{name} was not checked for personal data: the mail's OCR budget was used up",
        "{name}: 개인정보를 확인하지 못했습니다(메일의 OCR 한도를 다 썼습니다)",
    ),
    "mask_unchecked_ocr_failed": (
        "{name} was not checked for personal data: OCR failed",
        "{name}: 개인정보를 확인하지 못했습니다(OCR이 실패했습니다)",
    ),
    "attachment_list_unread": (
        "the attachment list could not be read",
        "첨부 파일 목록을 읽지 못했습니다",
    ),
    "hwp_preview_only": (
        "{name}: a distribution document (body encrypted): only its first-page preview is shown",
        "{name}: 배포용 문서(본문 암호화)라 첫 쪽 미리보기만 표시합니다",
    ),
    "document_pages_cut": (
        "{name}: longer than {limit} pages: the rest is not shown",
        "{name}: {limit}쪽을 넘어 나머지는 표시하지 않았습니다",
    ),
}

# reason code -> (English, Korean): why a mail could not be shown or an attachment was withheld.
REASONS: dict[str, tuple[str, str]] = {
    "timeout": (
        "rendering took longer than the wall-clock limit",
        "변환 시간이 제한을 넘었습니다",
    ),
    "cpu_limit": (
        "rendering used more CPU time than allowed",
        "변환에 허용된 CPU 시간을 넘었습니다",
    ),
    "memory_limit": (
        "rendering needed more memory than allowed",
        "변환에 허용된 메모리를 넘었습니다",
    ),
    "worker_crash": ("the render worker died", "변환 프로세스가 중단되었습니다"),
    "render_error": ("the renderer failed on this mail", "이 메일을 변환하지 못했습니다"),
    "bad_package": (
        "the render worker returned a package that does not decode",
        "변환 결과가 올바르지 않습니다",
    ),
    "agent_crash": (
        "the agent stopped repeatedly while rendering this mail",
        "이 메일을 변환하는 동안 에이전트가 여러 번 멈췄습니다",
    ),
    "unreadable_outlook_msg": (
        "an Outlook .msg file that could not be read",
        "읽을 수 없는 Outlook .msg 파일입니다",
    ),
    "too_large": ("larger than the size limit", "크기 제한을 넘습니다"),
    "smime_not_shown": (
        "S/MIME content that cannot be shown (encrypted for its recipient, or unreadable)",
        "표시할 수 없는 S/MIME 내용입니다(받는 사람용으로 암호화되었거나 읽을 수 없음)",
    ),
    "unreadable_tnef": (
        "an Outlook TNEF (winmail.dat) file that could not be read (corrupt or over a limit)",
        "읽을 수 없는 Outlook TNEF(winmail.dat) 파일입니다(손상되었거나 한도 초과)",
    ),
    "not_rendered_type": (
        "this file type is not shown as images",
        "그림으로 바꾸지 않는 파일 형식입니다",
    ),
    "budget": (
        "the mail's image budget was used up",
        "메일의 그림 용량 한도를 다 썼습니다",
    ),
    "bad_or_too_big_image": (
        "the picture is damaged or too large",
        "그림 파일이 손상되었거나 너무 큽니다",
    ),
    "bad_pdf": ("the PDF file is damaged", "PDF 파일이 손상되었습니다"),
    "encrypted_pdf": ("the PDF file is encrypted", "암호가 걸린 PDF 파일입니다"),
    "encrypted": ("the file is encrypted", "암호가 걸린 파일입니다"),
    "corrupt": ("the file is damaged", "파일이 손상되었습니다"),
    "layout_error": ("the layout failed", "화면 배치에 실패했습니다"),
    "chromium_failed": ("the browser renderer failed", "브라우저 변환에 실패했습니다"),
    "office_unavailable": (
        "the document converter is not available",
        "문서 변환기를 사용할 수 없습니다",
    ),
    "office_cannot_open": ("the document could not be opened", "문서를 열지 못했습니다"),
    "office_failed": ("the document could not be converted", "문서를 변환하지 못했습니다"),
    "office_timeout": (
        "converting the document took too long",
        "문서 변환 시간이 제한을 넘었습니다",
    ),
    "office_skipped": (
        "not converted: another document of this mail hung the converter",
        "이 메일의 다른 문서가 변환기를 멈추게 해 변환하지 않았습니다",
    ),
    "office_cpu_limit": (
        "converting the document used too much CPU time",
        "문서 변환이 허용된 CPU 시간을 넘었습니다",
    ),
    "office_memory_limit": (
        "converting the document needed more memory than allowed",
        "문서 변환에 허용된 메모리를 넘었습니다",
    ),
}

_FIELD = re.compile(r"\{(\w+)\}")
# Fields that are always numbers match only digits: with one free-text field at most per
# template, matching stays linear-ish even on hostile 500-character notes.
_NUMBER_FIELDS = frozenset({"count", "height", "limit", "page", "shown", "total", "width"})


def note(code: str, **fields: object) -> str:
    """The English text of note ``code`` (what travels in the manifest)."""
    return NOTES[code][0].format(**fields)


def reason_words(code: str, language: str) -> str:
    """Words for a reason code in ``language``; an unknown code is shown as it is."""
    words = REASONS.get(code)
    if words is None:
        return code
    return words[1] if language == "ko" else words[0]


def note_code(text: str) -> str | None:
    """The code of the note ``text`` was made from (None when it matches no template)."""
    for code, pattern in _code_matchers():
        if pattern.fullmatch(text):
            return code
    return None


def translate(text: str, language: str) -> str:
    """``text`` (an English note) in ``language``; unchanged when no template matches."""
    if language != "ko":
        return text
    for pattern, korean in _matchers():
        match = pattern.fullmatch(text)
        if match:
            return korean.format(**match.groupdict())
    return text


@cache
def _matchers() -> tuple[tuple[re.Pattern[str], str], ...]:
    """One anchored pattern per English template; text fields match lazily, numbers as digits."""
    found = [
        (re.compile(re.escape(english)), korean) for english, korean in REASONS.values()
    ]  # a worker failure's reason also travels as the first note
    found += [(_template_pattern(english), korean) for english, korean in NOTES.values()]
    return tuple(found)


@cache
def _code_matchers() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((code, _template_pattern(english)) for code, (english, _) in NOTES.items())


def _template_pattern(english: str) -> re.Pattern[str]:
    pieces = _FIELD.split(english)
    regex = "".join(
        (f"(?P<{piece}>[0-9]{{1,20}})" if piece in _NUMBER_FIELDS else f"(?P<{piece}>.+?)")
        if odd
        else re.escape(piece)
        for odd, piece in ((i % 2 == 1, p) for i, p in enumerate(pieces))
    )
    return re.compile(regex, re.S)
