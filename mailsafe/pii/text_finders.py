"""Finders for the kinds that are not numbers: e-mail addresses, passport MRZ lines and
secrets (private keys, API tokens, passwords in connection strings or next to their label).

Each runs only when a cheap test says the text could hold its kind ("@", "<<", a token's
prefix, a password label), so text without any pays a few substring searches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from mailsafe.pii.detectors import Candidate

EMAIL_SCORE: Final = 0.8  # an address is an address; whose it is, the rules decide
MRZ_NAME_LINE: Final = 0.8  # P<KORHONG<<GILDONG<<<...: 44 characters, no other text has it
MRZ_NUMBER_LINE: Final = 0.9  # its check digits hold
PRIVATE_KEY: Final = 1.0
API_TOKEN: Final = 0.9  # a vendor's own token prefix and length
URL_PASSWORD: Final = 0.9  # scheme://user:password@host
LABELLED_PASSWORD: Final = 0.6  # "PW: x7Gk2!" with a login nearby, or mixed characters
BARE_PASSWORD: Final = 0.3  # "비밀번호: 1234" with no login nearby: not reported

# ---- e-mail addresses ----------------------------------------------------------------------

EMAIL_LOCAL_MAX: Final = 64  # RFC 5321's limit on the part before "@"
_AT_RE: Final = re.compile(r"@(?=[A-Za-z0-9])")  # a literal first: the engine skips to each "@"
_LOCAL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-]*\Z")
_DOMAIN_RE: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


def find_emails(text: str) -> Iterator[Candidate]:
    """Addresses as ``local@domain.tld``; a Content-ID (``image001.png@01D9...``) has no
    letters-only top-level label and is no address."""
    if "@" not in text:
        return
    for at in _AT_RE.finditer(text):
        position = at.start()
        local = _LOCAL_RE.search(text, max(0, position - EMAIL_LOCAL_MAX), position)
        domain = _DOMAIN_RE.match(text, position + 1)
        if local is None or domain is None:
            continue
        start = local.start()
        while text[start] in "._%+-":  # the search may start inside a longer run
            start += 1
        yield Candidate("email", start, domain.end(), EMAIL_SCORE)


# ---- passport machine-readable zone (ICAO 9303, TD3: two lines of 44) ----------------------

# The first character comes before the look-behind (which tests the one before it), so the
# engine skips ahead to capitals, digits and fillers instead of testing every position.
_MRZ_LINE_RE: Final = re.compile(
    r"[A-Z0-9<](?<![A-Z0-9<].)(?:(?<=P)[A-Z<][A-Z<]{3}[A-Z<]{39}"
    r"|[A-Z0-9<]{8}[0-9][A-Z<]{3}[0-9]{7}[MFX<][0-9]{7}[A-Z0-9<]{14}[0-9<][0-9])(?![A-Z0-9<])"
)
_MRZ_WEIGHTS: Final = (7, 3, 1)
# Fields of the number line with their check digit's position: document number, birth, expiry.
_MRZ_CHECKED_FIELDS: Final = ((0, 9, 9), (13, 19, 19), (21, 27, 27))
MRZ_CHECKS_NEEDED: Final = 2
MRZ_FILLER_RUN: Final = "<<<"  # of three: one misread character must not hide a passport


def _mrz_value(char: str) -> int:
    if char.isdigit():
        return int(char)
    return 0 if char == "<" else ord(char) - ord("A") + 10


def mrz_check_ok(field: str, check: str) -> bool:
    total = sum(_mrz_value(c) * _MRZ_WEIGHTS[i % 3] for i, c in enumerate(field))
    return check.isdigit() and total % 10 == int(check)


def find_mrz_lines(text: str) -> Iterator[Candidate]:
    """The two lines of a passport's machine-readable zone, each one finding. Only lines
    holding "<<<" are searched: both lines of a zone end in fillers unless a name or the
    optional data fill them to the last character (C++ code's "<<" costs nothing then)."""
    position = text.find(MRZ_FILLER_RUN)
    while position >= 0:
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        line_end = len(text) if line_end < 0 else line_end
        for match in _MRZ_LINE_RE.finditer(text, line_start, line_end):
            candidate = _mrz_candidate(match)
            if candidate is not None:
                yield candidate
        position = text.find(MRZ_FILLER_RUN, line_end)


def _mrz_candidate(match: re.Match[str]) -> Candidate | None:
    line = match.group()
    if line[0] == "P" and not line[1].isdigit():
        score = MRZ_NAME_LINE if "<<" in line[5:] else 0.0
    else:
        held = sum(
            mrz_check_ok(line[start:end], line[check]) for start, end, check in _MRZ_CHECKED_FIELDS
        )
        score = MRZ_NUMBER_LINE if held >= MRZ_CHECKS_NEEDED else 0.0
    return Candidate("passport_mrz", match.start(), match.end(), score) if score else None


# ---- secrets ---------------------------------------------------------------------------------

PRIVATE_KEY_MAX_CHARS: Final = 16_384  # an RSA-8192 key in PEM is about 6,500 characters
_KEY_LABEL: Final = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PRIVATE_KEY_RE: Final = re.compile(
    rf"-----BEGIN {_KEY_LABEL}[\s\S]{{0,{PRIVATE_KEY_MAX_CHARS}}}?(?:-----END {_KEY_LABEL}|\Z)"
)
# scheme://user:password@host: the password is the secret (and its finding).
_URL_PASSWORD_RE: Final = re.compile(r"://[^\s:/@\"'<>]{1,64}:([^\s@/\"'<>]{1,128})@[A-Za-z0-9\[]")
_TOKEN_CHARACTERS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)
# Where a token or a password label can begin. When every branch of a pattern begins with
# a literal character, the engine skips ahead to the set of those characters and then only
# enters the branch whose first character it found: a quarter cheaper than one leading set
# with a look-behind per branch, which tested every look-behind at each "p", "g" and "A". A
# rarer character leads where the first is common, and the start is that many characters
# back (``_STARTS_BEFORE``): "eyJ" is found at its "J", "sk-" at its "-", "npm_" and
# "rk_live_" at their first "_". One pass finds all of them.
_SECRET_START_RE: Final = re.compile(
    r"P(?:[Ww]|[Aa][Ss][Ss])|p(?:[Ww]|[Aa][Ss][Ss])|비(?:밀번호|번)|패스워드|암호"
    r"|A(?:KIA|SIA|Iza)|g(?:h[pousr]_|ithub_pat_|lpat-)|xox|J(?<=eyJ)"
    r"|-(?<=sk-)|_(?<=npm_)|_(?<=k_)live_"
)
# What a start match reads -> how far before the match the token begins.
_STARTS_BEFORE: Final = {"J": 2, "-": 2, "_": 3, "_live_": 2}
_TOKEN_RE: Final = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9\-]{10,250}"  # Slack
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,250}|[sr]k_live_[A-Za-z0-9]{20,250}"  # OpenAI, Stripe
    r"|AIza[0-9A-Za-z_\-]{35}"  # Google
    r"|glpat-[0-9A-Za-z_\-]{20,250}"  # GitLab
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # a signed JWT
)
_TOKEN_END_RE: Final = re.compile(r"[A-Za-z0-9_\-]")
_PASSWORD_LABEL_RE: Final = re.compile(
    r"(?:[Pp](?:[Aa][Ss][Ss](?:[Ww](?:[Oo][Rr])?[Dd]|[Cc][Oo][Dd][Ee])|[Ww][Dd]?)"
    r"|비(?:밀번호|번)|패스워드|암호)"
    r"(?![A-Za-z])[ \t]*[)\]]?[ \t]*[:=：][ \t]*([!-~]{4,64})"
)
_LOGIN_WORD_RE: Final = re.compile(
    r"(?i:(?<![a-z])(?:id|user(?:name)?|login|uid|account|userid)(?![a-z])"
    r"|아이디|계정|로그인|사용자|접속)"
)
LOGIN_WINDOW_CHARS: Final = 80  # how far from a password label a login may stand
_MASKED_VALUE_RE: Final = re.compile(r"[*xX•●#\-_.]+")  # "********": already hidden
_TRAILING_PUNCTUATION: Final = ".,;)]}>\"'"


def find_secrets(text: str) -> Iterator[Candidate]:
    """Private keys, API tokens, passwords in URLs and passwords after their label."""
    if "://" in text:
        for match in _URL_PASSWORD_RE.finditer(text):
            yield Candidate("secret", match.start(1), match.end(1), URL_PASSWORD)
    if "PRIVATE KEY" in text:
        for match in _PRIVATE_KEY_RE.finditer(text):
            yield Candidate("secret", match.start(), match.end(), PRIVATE_KEY)
    for hint in _SECRET_START_RE.finditer(text):
        start = hint.start() - _STARTS_BEFORE.get(hint.group(), 0)
        yield from _secret_at(text, max(0, start))


def _secret_at(text: str, start: int) -> Iterator[Candidate]:
    """A token or a labelled password beginning at ``start``, if one does."""
    if start and text[start - 1] in _TOKEN_CHARACTERS:
        return  # inside a word or a longer token: neither a label nor a token begins
    token = _TOKEN_RE.match(text, start)
    if token is not None and _TOKEN_END_RE.match(text, token.end()) is None:
        yield Candidate("secret", start, token.end(), API_TOKEN)
        return
    label = _PASSWORD_LABEL_RE.match(text, start)
    if label is not None:
        candidate = _labelled_password(text, label)
        if candidate is not None:
            yield candidate


def _labelled_password(text: str, match: re.Match[str]) -> Candidate | None:
    value = match.group(1).rstrip(_TRAILING_PUNCTUATION)
    if len(value) < 4 or _MASKED_VALUE_RE.fullmatch(value):
        return None
    start = match.start(1)
    near = text[max(0, match.start() - LOGIN_WINDOW_CHARS) : match.end() + LOGIN_WINDOW_CHARS]
    mixed = not (value.isdigit() or value.isalpha())
    score = LABELLED_PASSWORD if mixed or _LOGIN_WORD_RE.search(near) else BARE_PASSWORD
    return Candidate("secret", start, start + len(value), score)


def find_text_kinds(text: str) -> list[Candidate]:
    """Candidates of every kind that is no number (addresses, MRZ lines, secrets), each
    finder run only when its cheap test passes: most texts (a subject, a file name, a line of
    prose) pass none, and three finders set up for nothing cost more than the tests."""
    found: list[Candidate] = []
    if "@" in text:
        found += find_emails(text)
    if MRZ_FILLER_RUN in text:
        found += find_mrz_lines(text)
    # The start search stops at the first start, early in any long text.
    if _SECRET_START_RE.search(text) is not None or "://" in text or "PRIVATE KEY" in text:
        found += find_secrets(text)
    return found
