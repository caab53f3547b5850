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

_MRZ_LINE_RE: Final = re.compile(
    r"(?<![A-Z0-9<])(?:P[A-Z<][A-Z<]{3}[A-Z<]{39}"
    r"|[A-Z0-9<]{9}[0-9][A-Z<]{3}[0-9]{7}[MFX<][0-9]{7}[A-Z0-9<]{14}[0-9<][0-9])(?![A-Z0-9<])"
)
_MRZ_WEIGHTS: Final = (7, 3, 1)
# Fields of the number line with their check digit's position: document number, birth, expiry.
_MRZ_CHECKED_FIELDS: Final = ((0, 9, 9), (13, 19, 19), (21, 27, 27))
MRZ_CHECKS_NEEDED: Final = 2  # of three: one misread character must not hide a passport


def _mrz_value(char: str) -> int:
    if char.isdigit():
        return int(char)
    return 0 if char == "<" else ord(char) - ord("A") + 10


def mrz_check_ok(field: str, check: str) -> bool:
    total = sum(_mrz_value(c) * _MRZ_WEIGHTS[i % 3] for i, c in enumerate(field))
    return check.isdigit() and total % 10 == int(check)


def find_mrz_lines(text: str) -> Iterator[Candidate]:
    """The two lines of a passport's machine-readable zone, each one finding."""
    if "<<" not in text:
        return
    for match in _MRZ_LINE_RE.finditer(text):
        line = match.group()
        if line[0] == "P" and not line[1].isdigit():
            if "<<" in line[5:]:
                yield Candidate("passport_mrz", match.start(), match.end(), MRZ_NAME_LINE)
            continue
        held = sum(
            mrz_check_ok(line[start:end], line[check]) for start, end, check in _MRZ_CHECKED_FIELDS
        )
        if held >= MRZ_CHECKS_NEEDED:
            yield Candidate("passport_mrz", match.start(), match.end(), MRZ_NUMBER_LINE)


# ---- secrets ---------------------------------------------------------------------------------

PRIVATE_KEY_MAX_CHARS: Final = 16_384  # an RSA-8192 key in PEM is about 6,500 characters
_KEY_LABEL: Final = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PRIVATE_KEY_RE: Final = re.compile(
    rf"-----BEGIN {_KEY_LABEL}[\s\S]{{0,{PRIVATE_KEY_MAX_CHARS}}}?(?:-----END {_KEY_LABEL}|\Z)"
)
# Vendors' token prefixes: a substring test on each comes first, the patterns only after.
TOKEN_PREFIXES: Final = (
    "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "sk-",
    "sk_live_", "rk_live_", "AIza", "glpat-", "eyJ", "npm_",
)  # fmt: skip
_TOKEN_RE: Final = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9\-]{10,250}"  # Slack
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,250}|[sr]k_live_[A-Za-z0-9]{20,250}"  # OpenAI, Stripe
    r"|AIza[0-9A-Za-z_\-]{35}"  # Google
    r"|glpat-[0-9A-Za-z_\-]{20,250}"  # GitLab
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # a signed JWT
    r")(?![A-Za-z0-9_\-])"
)
# scheme://user:password@host: the password is the secret (and its finding).
_URL_PASSWORD_RE: Final = re.compile(r"://[^\s:/@\"'<>]{1,64}:([^\s@/\"'<>]{1,128})@[A-Za-z0-9\[]")
_PASSWORD_LABEL_RE: Final = re.compile(
    r"(?i:password|passwd|passcode|pwd|pw|비밀번호|비번|패스워드|암호)"
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
    if "PRIVATE KEY" in text:
        for match in _PRIVATE_KEY_RE.finditer(text):
            yield Candidate("secret", match.start(), match.end(), PRIVATE_KEY)
    if any(prefix in text for prefix in TOKEN_PREFIXES):
        for match in _TOKEN_RE.finditer(text):
            yield Candidate("secret", match.start(), match.end(), API_TOKEN)
    if "://" in text:
        for match in _URL_PASSWORD_RE.finditer(text):
            yield Candidate("secret", match.start(1), match.end(1), URL_PASSWORD)
    yield from _labelled_passwords(text)


def _labelled_passwords(text: str) -> Iterator[Candidate]:
    for match in _PASSWORD_LABEL_RE.finditer(text):
        value = match.group(1).rstrip(_TRAILING_PUNCTUATION)
        if len(value) < 4 or _MASKED_VALUE_RE.fullmatch(value):
            continue
        start = match.start(1)
        near = text[max(0, match.start() - LOGIN_WINDOW_CHARS) : match.end() + LOGIN_WINDOW_CHARS]
        mixed = not (value.isdigit() or value.isalpha())
        score = LABELLED_PASSWORD if mixed or _LOGIN_WORD_RE.search(near) else BARE_PASSWORD
        yield Candidate("secret", start, start + len(value), score)


TEXT_FINDERS: Final = (find_emails, find_mrz_lines, find_secrets)
