"""Turn bytes with a (possibly lying) charset label into text, never raising.

Mail in Korea still arrives in EUC-KR, ``ks_c_5601-1987`` (Outlook's name for CP949) and,
rarely, ISO-2022-KR. Labels lie: "iso-8859-1" over CP949 bytes, "us-ascii" over UTF-8,
invented names such as ``x-unknown``. The rules, in order:

1. Map the label through :data:`LABEL_ALIASES` to the superset codec real mailers use
   (EUC-KR -> CP949, GB2312 -> GB18030, Shift_JIS -> CP932, ISO-8859-1 -> CP1252).
2. If the bytes decode strictly with that codec, and the label is not a single-byte one that
   commonly hides Korean or UTF-8, that is the answer.
3. Otherwise try UTF-8 strictly, then CP949 strictly when most of the result is Hangul,
   then the labelled (or CP1252) codec with replacement characters.
"""

from __future__ import annotations

import codecs

# Labels seen in mail, mapped to the codec mailers actually used to write them (a superset).
LABEL_ALIASES: dict[str, str] = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601_1987": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "ks_x_1001": "cp949",
    "korean": "cp949",
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "euckr": "cp949",
    "x-euc-kr": "cp949",
    "cp949": "cp949",
    "ms949": "cp949",
    "uhc": "cp949",
    "x-windows-949": "cp949",
    "windows-949": "cp949",
    "iso-2022-kr": "iso2022_kr",
    "csiso2022kr": "iso2022_kr",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}

# Codecs tried, strictly and in order, when bytes do not decode with their label's codec: what
# mailers of that script really wrote under the label. ISO-2022-JP is 7-bit, yet Japanese
# mailers label 8-bit EUC-JP and Shift_JIS bodies with it; EUC-JP first, because most EUC-JP
# text also "decodes" as Shift_JIS half-width katakana (bytes 0xA1-0xDF), never the reverse.
RELATED_CODECS: dict[str, tuple[str, ...]] = {
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2", "euc_jp", "cp932"),
    "euc_jp": ("cp932",),
    "cp932": ("euc_jp",),
    "iso2022_kr": ("cp949",),
    "gb18030": ("big5hkscs",),
    "big5hkscs": ("gb18030",),
}

# Codecs whose every byte sequence "decodes": a strict success proves nothing about the label,
# so Korean (CP949) or UTF-8 content behind them is looked for first.
SINGLE_BYTE_CODECS = frozenset({"cp1252", "latin-1", "iso8859-1", "ascii"})

# Share of non-ASCII characters that must be Hangul syllables before unlabelled bytes are
# taken as CP949: CP949 accepts many byte pairs, Hangul-dominance is what real Korean text shows.
HANGUL_SHARE_FOR_CP949 = 0.6

# Text codecs Python has that are not charsets a mail could be written in; a label naming
# one of them (or a bytes-to-bytes transform such as base64) is treated as unknown.
_NOT_CHARSETS = frozenset(
    {
        "idna",
        "punycode",
        "raw-unicode-escape",
        "raw_unicode_escape",
        "unicode-escape",
        "unicode_escape",
        "charmap",
        "undefined",
    }
)


def codec_for_label(untrusted_label: str | None) -> str | None:
    """The Python codec name for a charset label, or None when the label is unknown or bogus."""
    if not untrusted_label:
        return None
    label = untrusted_label.strip().strip("\"'").lower()[:64]
    if label in LABEL_ALIASES:
        return LABEL_ALIASES[label]
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    name = info.name
    if name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return LABEL_ALIASES.get(name, name)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _is_hangul_syllable(char: str) -> bool:
    return "\uac00" <= char <= "\ud7a3"


def looks_korean(text: str) -> bool:
    """True when most non-ASCII characters of ``text`` are Hangul syllables."""
    non_ascii = [c for c in text if ord(c) > 0x7F]
    if not non_ascii:
        return False
    hangul = sum(1 for c in non_ascii if _is_hangul_syllable(c))
    return hangul / len(non_ascii) >= HANGUL_SHARE_FOR_CP949


def guess_unlabelled(data: bytes) -> str:
    """Decode bytes that carry no trustworthy label: UTF-8, then Korean CP949, then CP1252."""
    if data.isascii():
        return data.decode("ascii")
    text = _strict(data, "utf-8")
    if text is not None:
        return text
    text = _strict(data, "cp949")
    if text is not None and looks_korean(text):
        return text
    if b"\x1b$)C" in data:  # the ISO-2022-KR designator sequence
        text = _strict(data, "iso2022_kr")
        if text is not None:
            return text
    return data.decode("cp1252", errors="replace")


def decode_bytes(data: bytes, untrusted_label: str | None) -> str:
    """Decode ``data`` labelled ``untrusted_label``; never raises, may contain U+FFFD."""
    codec = codec_for_label(untrusted_label)
    if codec is None:
        return guess_unlabelled(data)
    if codec in SINGLE_BYTE_CODECS:
        if data.isascii():
            return data.decode("ascii")
        guessed = _strict(data, "utf-8")
        if guessed is not None:
            return guessed
        guessed = _strict(data, "cp949")
        if guessed is not None and looks_korean(guessed):
            return guessed
    text = _strict(data, codec)
    if text is not None:
        return text
    return _lenient(data, codec)


def _lenient(data: bytes, codec: str) -> str:
    """The labelled codec failed strictly: prefer a codec that fits, else replace bad bytes."""
    guessed = _strict(data, "utf-8")
    if guessed is not None:
        return guessed
    for related in RELATED_CODECS.get(codec, ()):
        guessed = _strict(data, related)
        if guessed is not None:
            return guessed
    if codec != "cp949":
        guessed = _strict(data, "cp949")
        if guessed is not None and looks_korean(guessed):
            return guessed
    try:
        return data.decode(codec, errors="replace")
    except (LookupError, ValueError, UnicodeError):
        return data.decode("cp1252", errors="replace")
