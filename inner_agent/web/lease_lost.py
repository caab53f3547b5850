"""What a standby's page says when the lease's fence refuses a write (D80, D92): what was not
saved, named by the path the write came to — a decision, a withdrawal, a rule, a directory
change, an absence. Pure: a path in, the page's text out.

The status (503) and ``Retry-After`` are the same for every write; only the words differ, so
that an administrator whose rule was refused is not told a decision was lost.

A browser (it asks for HTML) gets the same words as a small page with a viewport tag: plain
text has none, so a phone laid it out 980 px wide and shrank it to a third (D96, seen in
Chromium at 390 px); other clients get the plain text.
"""

from __future__ import annotations

import html
import re
from typing import Final

__all__ = ["DECISION_NOT_SAVED", "NOT_SAVED", "lease_lost_html", "lease_lost_page"]

# Said for a decision: the page D80 gave every write (a write no row below names is "the
# change": true of any write).
DECISION_NOT_SAVED: Final = (
    "이 서버는 대기 서버로 넘어가는 중이어서 결정을 저장하지 않았습니다. "
    "잠시 후 다시 시도해 주십시오. (This agent no longer holds its state's lease; nothing was "
    "stored. Try again in a minute.)"
)
# The fenced writes by path: what was not saved, in Korean with its particle, and in English.
NOT_SAVED: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = tuple(
    (re.compile(pattern), korean, english)
    for pattern, korean, english in (
        (r"/requests/[^/]+/decide|/requests/bulk", "결정을", "the decision"),
        (r"/my/sent/[^/]+/withdraw", "메일 회수를", "the withdrawal"),
        (r"/policy/[^/]+/save", "규칙을", "the rule"),
        (r"/policy/[^/]+/toggle", "규칙 켜기·끄기를", "the rule switched on or off"),
        (r"/policy/[^/]+/move", "규칙 순서 변경을", "the rule's new place"),
        (r"/policy/[^/]+/versions/\d+/restore", "규칙 되돌리기를", "the version restored"),
        (r"/directory/person", "디렉터리의 사람 정보를", "the person's directory entry"),
        (r"/directory/import/apply", "인사 자료 가져오기를", "the HR import"),
        (r"/absence", "부재 설정을", "the absence"),
        (r"/absence/[^/]+/cancel", "부재 종료를", "the absence's end"),
    )
)


def lease_lost_page(path: str) -> str:
    """The 503's text for a write to ``path`` refused by the fence."""
    for pattern, korean, english in NOT_SAVED:
        if pattern.fullmatch(path):
            if korean == "결정을":
                return DECISION_NOT_SAVED
            return _not_saved(korean, english)
    return _not_saved("변경을", "the change")


def _not_saved(korean: str, english: str) -> str:
    return (f"이 서버는 대기 서버로 넘어가는 중이어서 {korean} 저장하지 않았습니다. "
            "잠시 후 다시 시도해 주십시오. (This agent no longer holds its state's "
            f"lease; {english} was not saved. Try again in a minute.)")  # fmt: skip


# The console's colours and fonts (layout.html), inline: the page needs nothing else.
_HEAD: Final = (
    '<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>저장하지 않았습니다 — maildiode</title><style>"
    'body { font-family: "Nanum Gothic", "Noto Sans CJK KR", sans-serif; margin: 0; '
    "padding: 16px; color: #222; background: #f4f5f7; overflow-wrap: break-word; "
    "word-break: keep-all; line-height: 1.5; } "
    ".alarm { border-left: 6px solid #b00020; background: #fdecea; color: #5f0010; "
    "padding: 8px 12px; margin: 0 0 12px; } .muted { color: #666; font-size: .9em; }"
    "</style></head>"
)


def lease_lost_html(path: str) -> str:
    """``lease_lost_page(path)`` as a page a phone lays out at its own width: the Korean
    sentence, then the English one."""
    korean, _, english = lease_lost_page(path).partition(" (")
    return (f'{_HEAD}<body><main><p class="alarm" id="not-saved">{html.escape(korean)}</p>'
            f'<p class="muted" lang="en">{html.escape(english.rstrip(")"))}</p>'
            '<p><a href="/">처음 화면으로</a></p></main></body></html>')  # fmt: skip
