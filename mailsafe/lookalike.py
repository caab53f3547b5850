"""Text made to look like something it is not: invisible characters, bidi controls,
compatibility forms and homoglyphs (issue 15.2).

A display name ``대표이사 ceo@bank<U+200B>.example`` shows as our executive's address, yet
differs from it byte by byte. Two answers, both pure (strings in, strings out):

* :func:`claimed_domain` compares what a reader may *see*: every form of the text a mail client
  may show (as written, with its punycode labels decoded, and reordered by the bidi controls
  in it, left-to-right or right-to-left), each reduced for comparison by :func:`comparable`
  (invisible characters removed, NFKC, homoglyphs mapped to the Latin letter they imitate,
  case folded). Every address-like run in every form counts.
* :func:`reveal_invisible` shows what a reader would not see: each invisible character becomes
  a visible marker such as ``⟨U+200B⟩``.

"Invisible" is Unicode's Default_Ignorable_Code_Point property (which holds every bidi control)
plus the format characters (category Cf). Python's ``unicodedata`` has no Default_Ignorable
property, so its ranges are written out below; a test checks the class against ``unicodedata``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = [
    "claimed_domain",
    "comparable",
    "reader_forms",
    "reveal_bidi_controls",
    "reveal_invisible",
]

# DerivedCoreProperties.txt (Unicode 15.1), Default_Ignorable_Code_Point, reserved ones included
# so that a character assigned later is already treated as what the standard promises it is.
_DEFAULT_IGNORABLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
# Format characters (Cf) that are not default-ignorable; some draw a mark, none is a letter.
_FORMAT = (
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f"
)
_INVISIBLE = re.compile(f"[{_DEFAULT_IGNORABLE}{_FORMAT}]")
# The bidi controls (UAX #9 §2): embeddings, overrides, isolates and the three marks.
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_BIDI_CONTROL = re.compile(f"[{_BIDI_CONTROLS}]")
# A domain label in its ASCII form (RFC 5890 "xn--" + punycode); a label is at most 63 octets.
_ACE_LABEL = re.compile(r"(?i)(?<![a-z0-9-])xn--([a-z0-9-]{1,59})(?![a-z0-9-])")
# A character that can make a reader reorder text: a bidi control or a right-to-left letter.
_REORDERS = re.compile(f"[{_BIDI_CONTROLS}\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
# Emoji sequences join symbols with U+200D and pick a presentation with U+FE0E/U+FE0F; shown
# as markers they would fill every subject with a smiley in it, and after a symbol they hide
# nothing a reader compares (they never sit between letters of an address there).
_EMOJI_JOINERS = frozenset("\u200d\ufe0e\ufe0f")

# Letters of other scripts drawn like a Latin letter (from Unicode's confusables.txt, the ones
# that matter in a domain name), upper case mapped to lower: domains compare without case. The
# ideographic full stop is a label separator in IDNA (RFC 3490 §3.1), so it reads as a dot.
_HOMOGLYPH_PAIRS = (
    "аa еe оo рp сc хx уy іi јj ѕs һh ԁd ԛq ԝw ӏl үy ѵv"  # Cyrillic
    " Аa Вb Еe Кk Мm Нh Оo Рp Сc Тt Хx Уy Ѕs Іi Јj Ԛq Ԝw Һh"
    " αa οo ρp ιi υu νv κk χx ϲc ϳj"  # Greek
    " Αa Βb Εe Ζz Ηh Ιi Κk Μm Νn Οo Ρp Τt Υy Χx"
    " օo սu ոn ɑa ɡg ıi 。."  # Armenian, Latin variants, ideographic full stop
)
_HOMOGLYPHS: dict[int, int] = {ord(pair[0]): ord(pair[1]) for pair in _HOMOGLYPH_PAIRS.split()}
# An address as a reader picks it out of text (compared after ``comparable``, so lower case).
_ADDRESS_RUN = re.compile(r"[^\s<>@\"']+@([a-z0-9.-]+)")


def comparable(untrusted: str) -> str:
    """The text reduced to what a reader tells apart: invisible characters removed (before and
    after NFKC, which may map one to another), compatibility forms folded (``＠`` to ``@``,
    full-width letters to ASCII), homoglyphs mapped to their Latin letter, case folded."""
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", untrusted))
    text = _INVISIBLE.sub("", text).translate(_HOMOGLYPHS)
    return text.casefold().translate(_HOMOGLYPHS)


def reader_forms(untrusted: str) -> tuple[str, ...]:
    """The forms a mail client may show the text in: as written and with its punycode labels
    decoded (clients show ``xn--bnk-6cd.example`` as ``bаnk.example``); each, when anything in
    it can reorder text, also as the bidi algorithm lays it out in a left-to-right and a
    right-to-left paragraph (a client may choose either, e.g. HTML ``dir=auto``)."""
    decoded = _idn_decoded(untrusted)
    written = (untrusted,) if decoded == untrusted else (untrusted, decoded)
    forms: list[str] = []
    for text in written:
        forms.append(text)
        if _REORDERS.search(text):
            forms += [_visual_order(text, rtl=False), _visual_order(text, rtl=True)]
    return tuple(forms)


def _idn_decoded(untrusted: str) -> str:
    """The text with every ``xn--`` label that decodes as punycode (RFC 3492) decoded, as a
    mail client showing internationalised domains draws it; other text unchanged."""

    def decoded(label: re.Match[str]) -> str:
        try:
            return label.group(1).encode("ascii").decode("punycode")
        except UnicodeError:
            return label.group()

    return _ACE_LABEL.sub(decoded, untrusted) if "xn--" in untrusted.casefold() else untrusted


def claimed_domain(untrusted: str, domains: Sequence[str]) -> str | None:
    """The first of ``domains`` that ``untrusted`` shows a reader as an address's domain (or a
    subdomain of it), or None. Looked at: every address-like run and the text after the last
    ``@``, in every form from :func:`reader_forms`, compared as :func:`comparable` makes them."""
    ours = [(domain, comparable(domain).rstrip(".")) for domain in domains]
    for form in map(comparable, reader_forms(untrusted)):
        shown = [*_ADDRESS_RUN.findall(form), form.rpartition("@")[2].strip()]
        for candidate in (d.rstrip(".") for d in shown if d):
            for domain, folded in ours:
                if folded and (candidate == folded or candidate.endswith("." + folded)):
                    return domain
    return None


def reveal_invisible(untrusted: str) -> str:
    """Each invisible character (default-ignorable, bidi control or format character) replaced
    by a visible ``⟨U+XXXX⟩``; emoji joiners and presentation selectors after a symbol stay."""
    if untrusted.isascii():
        return untrusted
    return _INVISIBLE.sub(lambda m: _marker(untrusted, m.start()), untrusted)


def reveal_bidi_controls(untrusted: str) -> str:
    """Each bidi control replaced by a visible ``⟨U+XXXX⟩`` (for long text such as a body, where
    other invisible characters are common and harmless, but reordering still misleads)."""
    if untrusted.isascii():
        return untrusted
    return _BIDI_CONTROL.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", untrusted)


def _marker(text: str, index: int) -> str:
    char = text[index]
    if char in _EMOJI_JOINERS and index and _is_symbol_or_selector(text[index - 1]):
        return char
    return f"⟨U+{ord(char):04X}⟩"


def _is_symbol_or_selector(char: str) -> bool:
    return unicodedata.category(char) == "So" or char == "\ufe0f"


# --------------------------------------------------------------------------- bidi layout

_OPENERS = {"LRE": False, "LRO": False, "LRI": False, "FSI": False,
            "RLE": True, "RLO": True, "RLI": True}  # fmt: skip  # -> right-to-left?
_CLOSERS = frozenset({"PDF", "PDI"})
# UAX #9 BD2: deeper embeddings are ignored.
_MAX_DEPTH = 125


def _visual_order(text: str, *, rtl: bool) -> str:
    """``text`` in the order the Unicode bidi algorithm (UAX #9) shows it, simplified to what
    can reorder an address: explicit embeddings, overrides and isolates (X1-X8, isolates as
    embeddings, FSI as LRI), strong types (numbers count as neutrals), neutrals resolved by
    their neighbours (N1-N2), implicit levels (I1-I2) and reversal (L2). Controls are dropped."""
    chars, levels, kinds = _explicit_levels(text, 1 if rtl else 0)
    _resolve_neutrals(levels, kinds)
    resolved = [
        level + 1 if (kind == "R") != (level % 2 == 1) else level
        for level, kind in zip(levels, kinds, strict=True)
    ]
    return "".join(_reorder(chars, resolved))


def _explicit_levels(text: str, base: int) -> tuple[list[str], list[int], list[str]]:
    """Each non-control character with its embedding level and strong type (L, R or N)."""
    stack: list[tuple[int, str | None]] = [(base, None)]
    chars: list[str] = []
    levels: list[int] = []
    kinds: list[str] = []
    for char in text:
        bidi = unicodedata.bidirectional(char)
        level, override = stack[-1]
        if bidi in _OPENERS:
            to_rtl = _OPENERS[bidi]
            deeper = level + 1 if (level % 2 == 0) == to_rtl else level + 2
            forced = ("R" if to_rtl else "L") if bidi in ("LRO", "RLO") else None
            stack.append((deeper, forced) if deeper <= _MAX_DEPTH else (level, override))
        elif bidi in _CLOSERS:
            if len(stack) > 1:
                stack.pop()
        else:
            strong = "R" if bidi in ("R", "AL") else "L" if bidi == "L" else "N"
            chars.append(char)
            levels.append(level)
            kinds.append(override or strong)
    return chars, levels, kinds


def _resolve_neutrals(levels: list[int], kinds: list[str]) -> None:
    """N1/N2: a run of neutrals takes the direction of the strong types on both sides when they
    agree, otherwise its embedding direction; a level's edge counts as its own direction."""
    index = 0
    while index < len(kinds):
        if kinds[index] != "N":
            index += 1
            continue
        end = index
        while end < len(kinds) and kinds[end] == "N" and levels[end] == levels[index]:
            end += 1
        own = "R" if levels[index] % 2 else "L"
        before = kinds[index - 1] if index and levels[index - 1] == levels[index] else own
        after = kinds[end] if end < len(kinds) and levels[end] == levels[index] else own
        for neutral in range(index, end):
            kinds[neutral] = before if before == after else own
        index = end


def _reorder(chars: list[str], levels: list[int]) -> list[str]:
    """L2: from the highest level down to the lowest odd one, reverse every run at or above."""
    if not levels:
        return chars
    lowest_odd = min(levels) | 1
    for level in range(max(levels), lowest_odd - 1, -1):
        index = 0
        while index < len(chars):
            if levels[index] < level:
                index += 1
                continue
            end = index
            while end < len(chars) and levels[end] >= level:
                end += 1
            chars[index:end] = chars[index:end][::-1]
            levels[index:end] = levels[index:end][::-1]
            index = end
    return chars
