"""Links made inert for people to read (issue 17.7): ``hxxps://``, ``example[.]com``,
``user[@]example[.]com``, so that nothing (a mail client's auto-linking, a copy into a browser)
turns them back into links. Pure and light (no rendering imports): the renderer labels each
link's target with it (``mailsafe.render.links``) and the inner agent defangs the mail's text
it carries in a notification's plain-text part (``defang_text``).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

__all__ = ["defang", "defang_text", "split_authority"]

_SCHEMES: Final = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}
_SCHEME_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31}):")
# Spaces, controls and invisible formatting characters are shown percent-encoded: a target
# must read as what it is, not as what its disguise makes it look like.
_HIDDEN_RE: Final = re.compile(
    "[\\s\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff]"
)
# What mail clients make a link of in plain text (Outlook, Thunderbird, Gmail): a URL with a
# scheme a browser opens, a run starting "www.", and (Outlook, Gmail) a bare domain or a mail
# address ("phish.example/login", "ceo@evil.example"). A bare name is a run of name characters
# whose last label could be a top-level domain (two or more ASCII letters, or punycode): no
# list of TLDs is shipped, so a few names no client links get brackets too, which still read
# as written (D100). The name alternative takes a whole run at once, so the text is read once
# (a pattern for the name itself would rescan a long run from each of its characters).
_URL_RUN: Final = r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'`]+"
_URL_START: Final = r"(?:https?|ftp)://|www\."
_LINKABLE_IN_TEXT: Final = re.compile(
    f"(?i)(?P<url>{_URL_RUN})|(?:(?!{_URL_START})[\\w.%+@-])+"  # a name stops where a URL starts
)
_TOP_LEVEL_LABEL: Final = re.compile(r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]+)(?![A-Za-z0-9-])")
# File types written in prose ("invoice.pdf") that are no top-level domain, so no client links
# them: left as written. Names that are both (".zip", ".mov") are defanged.
_FILE_SUFFIXES: Final = frozenset((
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "hwp", "hwpx", "txt", "csv", "rtf",
    "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "htm", "html", "exe", "dll", "js", "py",
    "eml", "msg"))  # fmt: skip


# Authentication-Results keys (RFC 8601 `ptype.property`: `smtp.mailfrom`, `header.from`): the
# raw authentication row is full of them and no client links one, as none of these properties
# is a top-level domain (checked against the public suffix list; `md`, `mv` and `zone` are, so
# `header.md` and `dns.zone` keep their brackets). Only the whole name is exempt, never a
# longer one (`smtp.mailfrom.evil.example`) nor an address (`x@header.from`).
_AUTH_RESULT_PROPERTIES: Final = ("mailfrom", "helo", "ehlo", "auth", "rcptto", "from", "sender",
                                  "selector", "dmarc", "iprev", "ip", "txt", "hash")  # fmt: skip
_AUTH_RESULT_KEYS: Final = frozenset(
    f"{ptype}.{prop}" for ptype in ("smtp", "header", "body", "policy")
    for prop in _AUTH_RESULT_PROPERTIES
)  # fmt: skip


def defang(href: str) -> str:
    """The target, made inert: scheme renamed, dots of the host and ``@`` bracketed."""
    href = _HIDDEN_RE.sub(lambda m: quote(m.group(0), safe=""), href)
    match = _SCHEME_RE.match(href)
    if match is None:  # relative ("www.example.com" is a path to a browser, a link to a reader)
        return _defanged_authority(href)
    scheme = match.group(1).lower()
    rest = href[match.end() :]
    if scheme == "mailto":
        return "mailto:" + rest.replace("@", "[@]").replace(".", "[.]")
    if scheme not in _SCHEMES:
        return f"{scheme}:…"
    authority, path = split_authority(rest)
    return f"{_SCHEMES[scheme]}:{_defanged_authority(authority)}{path}"


# The only words a link can be in (no link crosses a space): one holding "://" or "www.", or
# a dot before an ASCII letter (a bare name's last label starts with one); a full stop or a
# version number ("1.2.3") is not read further. Anchored at a word's start, the look-ahead
# reads each word once.
_CANDIDATE_WORD: Final = re.compile(r"(?i)(?<!\S)(?=\S*?(?:\.[a-z]|://|www\.))\S+")


def defang_text(untrusted: str) -> str:
    """Free text with every run a mail client would turn into a link (``https://…``,
    ``www.…``, ``phish.example/login``, ``ceo@evil.example``) defanged as a link's target is:
    a notification carries the mail's text, and a reader's client would otherwise give the
    sender's links back. Only the words that can hold one are read closely: the same result
    as reading every word, at a fraction of the cost on a mail's prose."""
    return _CANDIDATE_WORD.sub(_defanged_word, untrusted)


def _defanged_word(word: re.Match[str]) -> str:
    return _LINKABLE_IN_TEXT.sub(_defanged_run, word.group())


def _defanged_run(match: re.Match[str]) -> str:
    if match.group("url") is not None:
        return defang(match.group())
    return _defanged_name(match.group())


def _defanged_name(run: str) -> str:
    # A sentence's full stop stays one; a trailing hyphen ends no host name, so a client
    # links the name before it ("evil.example-").
    name = run.rstrip(".-")
    if _is_linkable_name(name):
        return _defanged_authority(name) + run[len(name) :]
    if "@" in name:  # no address ("evil.example@", "evil.example@한"), yet the name before links
        return "@".join(_defanged_name(piece) for piece in run.split("@"))
    return run


def _is_linkable_name(name: str) -> bool:
    """A domain (``evil.example``) or an address (``ceo@evil.example``), not ``invoice.pdf``
    nor an Authentication-Results key (``smtp.mailfrom``)."""
    if name.lower() in _AUTH_RESULT_KEYS:
        return False
    _, at, domain = name.rpartition("@")
    *labels, last = domain.split(".")
    if not labels or not labels[-1] or _TOP_LEVEL_LABEL.match(last) is None:
        return False
    return bool(at) or last.lower() not in _FILE_SUFFIXES


def split_authority(rest: str) -> tuple[str, str]:
    """(``//host``, the rest) of what follows a scheme's colon; ("", all) without ``//``."""
    if not rest.startswith("//"):
        return "", rest
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop, 2)
        if found != -1:
            end = min(end, found)
    return rest[:end], rest[end:]


def _defanged_authority(authority: str) -> str:
    return authority.replace("@", "[@]").replace(".", "[.]")
