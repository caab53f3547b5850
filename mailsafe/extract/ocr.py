"""The text in a picture's pixels, read by Tesseract (``tesseract-ocr``, ``-kor``).

A screenshot of a customer table or a photo of a form carries personal data no text reader
sees. Pictures are decoded by Pillow (only after their declared size passed a limit), turned
grey, shrunk to ``ocr_max_pixels`` and handed to the ``tesseract`` program as a PNG on its
standard input; its text comes back on standard output. Nothing is written to disk.

OCR is best effort inside a budget per mail (pictures and seconds): a picture past it, one
too small to hold a line of text, or one Tesseract fails on gives no text and no finding --
what every picture gave before OCR. A decoder or Tesseract stuck on a crafted picture is
bounded by the time it is given here and, around all of it, by the reader's child process.

The renderer's masking (``mailsafe.render.masking``) reads pictures here too, with their word
boxes (:func:`image_reading`), inside the render worker and within the same kind of budget:
the same reading as the scan's (its text, a passport's letter read again from the word's
pixels, the read-back's repaired lines placed over their words: ``ocr_words``), so what the
scan finds in a picture's first reading the masking paints over.
"""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import struct
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageChops, ImageStat, UnidentifiedImageError

from mailsafe.errors import MailsafeError
from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr_reading import (
    MAX_PASSPORT_REREADS,
    mrz_number_line,
    passport_from_latin,
    passport_suspect,
    read_back,
    unlike_its_twins,
    unread_mrz,
    wide_first_glyph,
    with_leading_letter,
)
from mailsafe.extract.ocr_words import WordReading, lines_with_new_findings, read_back_placed
from mailsafe.positions import Box, PictureLayout, PlacedWord

__all__ = [
    "DEFAULT_LANGUAGES",
    "OCR_NOT_RUN",
    "OcrUnavailable",
    "OcrWord",
    "enlarged",
    "grey_picture",
    "grey_png_text",
    "grey_png_words",
    "image_reading",
    "ocr_allowed",
    "ocr_languages_available",
    "picture_text",
    "picture_words",
    "resolve_ocr",
    "tesseract_command",
    "tesseract_path",
    "with_new_findings",
    "words_as_text",
]

# Declared sizes past this are not decoded at all (8000 x 6250: past any camera's output).
MAX_DECODED_PIXELS: Final = 50_000_000
# Smaller pictures are icons, logos, spacers and tracking pixels: no line of text fits.
MIN_PIXELS: Final = 10_000
MIN_SIDE: Final = 16
# Seconds kept back from the mail's reading budget for what follows the pictures.
_RESERVE_SECONDS: Final = 2.0
_PILLOW_FORMATS: Final = ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP", "ICO")
# Tesseract's page segmentation "sparse text: as much text as possible, in no order". The
# default (automatic layout) lost whole lines of small screenshots in tests; the scan needs
# every word, not the reading order.
_SPARSE_TEXT: Final = "11"
# Pictures of at most OCR_UPSCALE_MAX_PIXELS are read a second time at twice their size:
# screen text is 12-16 pixels high, below the size Tesseract reads well, and at that size it
# misread S as 5, G as 6, O as 0 and the MRZ filler "<" as K or C. Measured on the labelled
# set's screenshots (15 px text): recall 0.71 at 1x, 0.79 at 2x, 0.75 at 3x. Both readings
# are kept: enlarged, a rendered HWP page lost a Hangul word it had at its own size. Larger
# pictures (pages, full screens) are read once, as before: each doubling costs four times.
OCR_UPSCALE: Final = 2.0
OCR_UPSCALE_MAX_PIXELS: Final = 1_000_000  # enlarged, at most the default ocr_max_pixels


# Blank characters looked through for the next word in Tesseract's text (spaces a wide gap
# keeps with preserve_interword_spaces, the blank lines between blocks).
_MAX_WORD_GAP: Final = 256
# Fields of a row of Tesseract's TSV output (level ... conf, text).
_TSV_FIELDS: Final = 12
# Words taken from one picture's TSV; a picture of more is noise (a page of 6-point text has
# about 3,000).
MAX_OCR_WORDS: Final = 20_000
# Why a picture's pixels were not read: its words are unknown, not absent.
OCR_NOT_RUN: Final = ("ocr_unavailable", "ocr_budget", "ocr_failed")


# What ``[outbound] ocr = "auto"`` or ``true`` reads in: Korean, and Latin letters for
# passport numbers and addresses.
DEFAULT_LANGUAGES: Final = "kor+eng"


class OcrUnavailable(MailsafeError):
    """OCR was asked for and Tesseract (or one of its languages) is not installed."""

    code = "ocr-unavailable"


def resolve_ocr(setting: bool | str) -> str:
    """The Tesseract languages for an ``ocr`` setting: ``"auto"`` reads Korean and English
    when Tesseract has both and is off ('') otherwise; ``True`` insists (``OcrUnavailable``
    says what to install); ``False`` is off; any other string names the languages."""
    if setting is False:
        return ""
    languages = DEFAULT_LANGUAGES if setting in (True, "auto") else str(setting)
    missing = set(languages.split("+")) - ocr_languages_available()
    if not missing:
        return languages
    if setting == "auto":
        return ""
    if tesseract_path() is None:
        raise OcrUnavailable(
            "OCR is on but the tesseract program is not installed "
            "(Debian: apt-get install tesseract-ocr tesseract-ocr-kor)"
        )
    raise OcrUnavailable(
        f"OCR is on but Tesseract has no data for {', '.join(sorted(missing))} "
        "(Debian: apt-get install tesseract-ocr-kor)"
    )


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


@functools.cache
def ocr_languages_available() -> frozenset[str]:
    """The languages the installed Tesseract reads (empty when it is not installed)."""
    program = tesseract_path()
    if program is None:
        return frozenset()
    try:
        listed = subprocess.run(
            [program, "--list-langs"], capture_output=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    lines = listed.decode("utf-8", "replace").splitlines()[1:]  # after "List of ..."
    return frozenset(line.strip() for line in lines if line.strip())


def picture_text(data: bytes, budget: Budget) -> str:
    """What Tesseract reads in the picture ``data`` ('' when OCR is off or out of budget): at
    its own size and, when it is small, enlarged too (see OCR_UPSCALE); both readings."""
    if ocr_allowed(budget) is None:
        return ""
    png = grey_picture(data, budget.limits.ocr_max_pixels)
    if png is None:
        return ""
    return _further_readings(grey_png_text(png, budget), png, budget)


def _further_readings(text: str, png: bytes, budget: Budget) -> str:
    """``text``, the first reading of the grey ``png``, with the lines of further readings
    that find more: the picture enlarged when it is small (see OCR_UPSCALE), and in Latin
    only when a passport's zone was not read. Their lines come after ``text``, so the places
    of the first reading's words in it stay where they were."""
    larger = enlarged(png, budget.limits.ocr_max_pixels)
    if larger is not None:
        text = with_new_findings(text, grey_png_text(larger, budget, another_reading=True))
    if unread_mrz(text):
        # A passport's zone is Latin by definition (ICAO 9303), and the Korean model read
        # some of its lines as Hangul ("『<10띠시6<식비이81<<<"): read once more in Latin only.
        latin = _latin(budget.limits.ocr_languages)
        text = with_new_findings(text, grey_png_text(larger or png, budget, latin,
                                                  another_reading=True))  # fmt: skip
    return text


def with_new_findings(text: str, another: str) -> str:
    """``text`` and the lines of ``another`` reading of the same picture on which personal
    data is found that ``text`` does not hold (compared by letters and digits): one number
    read the same way twice is one finding, not two, and a line the second reading got right
    (a region name before a licence) is kept whole, its context with it."""
    wanted = lines_with_new_findings(text, another)
    lines = another.split("\n")
    return "\n".join([text, *(lines[index] for index in wanted)]) if wanted else text


def _latin(languages: str) -> str:
    """English alone when it is among ``languages`` (else ``languages`` as they are)."""
    return "eng" if "eng" in languages.split("+") else languages


def picture_words(data: bytes, budget: Budget) -> tuple[str, PictureLayout]:
    """What Tesseract reads in the picture ``data``, as :func:`picture_text`, with each
    word's place in that text and its box in the picture's own pixels ('' and no words when
    OCR is off, out of budget or the picture is not read)."""
    nothing = ("", PictureLayout(0, (0, 0), ()))
    if ocr_allowed(budget) is None:
        return nothing
    grey = _grey_picture_sized(data, budget.limits.ocr_max_pixels)
    if grey is None:
        return nothing
    text, layout = grey_png_words(grey.png, budget, grey.pixels, grey.scale)
    return _further_readings(text, grey.png, budget), layout


def grey_png_words(
    png: bytes, budget: Budget, pixels: tuple[int, int], scale: float = 1.0, page: int = 0
) -> tuple[str, PictureLayout]:
    """What Tesseract reads in ``png`` (grey, at most ``ocr_max_pixels``): its text, as
    :func:`grey_png_text` gives it, and each word's place in that text with its box (from
    the same reading's TSV), counted against the budget; boxes multiplied by ``scale`` into
    a picture of ``pixels``, on ``page``."""
    seconds = ocr_allowed(budget)
    reading = None if seconds is None else _word_reading(png, budget, seconds)
    if reading is None:
        return "", PictureLayout(page, pixels, ())
    reading = reading.scaled(scale)
    return reading.text, PictureLayout(page, pixels, reading.words)


def _word_reading(png: bytes, budget: Budget, seconds: float) -> WordReading | None:
    """One Tesseract run over the grey ``png`` (text and TSV), counted against the budget:
    its text with a passport number's letter read again from its word's pixels (in place,
    the same length) and the read-back's repaired lines after it, every word placed with its
    box in ``png``'s pixels (``ocr_words``). None when Tesseract failed. What the scan reads
    of a picture and what the renderer's masking paints over come from this one reading."""
    budget.ocr_pictures += 1
    started = time.monotonic()
    try:
        output = _run_tesseract(png, budget.limits.ocr_languages, seconds, boxes=True,
                                text_too=True)  # fmt: skip
    finally:
        budget.ocr_seconds += time.monotonic() - started
    if output is None:
        return None
    tsv, text = _split_tsv_and_text(output.decode("utf-8", "replace"))
    words = _placed(parse_tsv(tsv.encode()), text)
    text = _passports_read_again(png, text, words, budget)
    return read_back_placed(text, words)


def _passports_read_again(
    png: bytes, text: str, words: Sequence[PlacedWord], budget: Budget
) -> str:
    """``text`` (the reading of ``png`` whose ``words`` are placed in it, boxes in ``png``'s
    pixels) with nine digits that may be a passport number whose letter OCR read as a digit
    looked at again in their word's pixels, and replaced by the passport number they show
    (:func:`_passport_in_pixels`; the same length, so every word's place in ``text`` stays).
    At most MAX_PASSPORT_REREADS words of at most MAX_REREAD_WORD_PIXELS, each a Tesseract run
    counted against the budget's seconds (D84)."""
    latin = _latin(budget.limits.ocr_languages)
    if latin == budget.limits.ocr_languages:
        return text  # no Latin model apart from what already read it
    suspects = [
        (word, span)
        for word in words
        if (span := passport_suspect(text[word.start : word.end])) is not None
        and _pixels(word.box) <= MAX_REREAD_WORD_PIXELS
        and not _on_mrz_number_line(text, word.start)
    ][:MAX_PASSPORT_REREADS]
    if not suspects:
        return text
    with Image.open(io.BytesIO(png), formats=("PNG",)) as picture:
        grey = picture.convert("L")
    for word, (first, last) in suspects:
        start, end = word.start + first, word.start + last
        number = _passport_in_pixels(grey, word.box, (first, text[start:end]), latin, budget)
        if number is not None:
            text = text[:start] + number + text[end:]
    return text


# A word's box looked at again, in pixels at most: nine characters of 100-pixel text. A larger
# "word" (one a crafted picture makes of its whole area) is left as read: its pixels are
# walked in Python and enlarged for Tesseract.
MAX_REREAD_WORD_PIXELS: Final = 100_000


def _pixels(box: Box) -> int:
    left, top, right, bottom = box
    return max(0, right - left) * max(0, bottom - top)


def _on_mrz_number_line(text: str, position: int) -> bool:
    """Whether the line of ``text`` at ``position`` is a passport zone's number line: its
    document number is the zone's, read back with its letter by its check digit (read_back),
    and reported as the zone, not as a passport number beside it."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return mrz_number_line(text[start : len(text) if end < 0 else end]) is not None


def _passport_in_pixels(
    grey: Image.Image,
    box: Box,
    token: tuple[int, str],
    latin: str,
    budget: Budget,
) -> str | None:
    """The passport number the pixels of the word ``box`` show where OCR read the nine
    digits of ``token`` (their place in the word, punctuation around them, and the digits):
    the Latin model's reading of the word, else OCR's; either with its first character made
    the letter OCR reads as that digit when the first glyph is drawn unlike the digit. None
    when neither reads as a passport number (``ocr_reading.passport_from_latin``)."""
    first, as_read = token
    readings = [_word_in_latin(grey, box, latin, budget), as_read]
    glyphs = _glyph_boxes(grey, box)[first : first + len(as_read)]
    if _first_glyph_is_a_letter(grey, glyphs, as_read):
        readings = [None if r is None else with_leading_letter(r, as_read) for r in readings]
    for reading in readings:
        number = None if reading is None else passport_from_latin(as_read, reading)
        if number is not None:
            return number
    return None


def _first_glyph_is_a_letter(grey: Image.Image, glyphs: list[Box], as_read: str) -> bool:
    """Whether the first of ``glyphs`` (one per character of ``as_read``) is drawn unlike the
    digit OCR read it as: wider than the other digits (O against 0), or unlike every other
    glyph of the word read as that digit (S against 5)."""
    if len(glyphs) != len(as_read):
        return False  # glyphs run together or broken up: not told apart
    widths = [right - left for left, _top, right, _bottom in glyphs]
    if as_read[0] == "0" and wide_first_glyph(widths):
        return True
    twins = [glyph for glyph, char in zip(glyphs[1:], as_read[1:], strict=True)
             if char == as_read[0]]  # fmt: skip
    return unlike_its_twins([_glyph_difference(grey, glyphs[0], twin) for twin in twins])


def _glyph_difference(grey: Image.Image, one: Box, other: Box) -> float:
    """The mean difference of grey levels between two glyphs of one line, aligned on their
    left edges give or take a pixel (where a screen put each glyph differs by a fraction)."""
    first, second = grey.crop(one), grey.crop(other)
    width, height = max(first.width, second.width) + 2, max(first.height, second.height)
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(first, (1, 0))
    best = 255.0
    for shift in (0, 1, 2):
        shifted = Image.new("L", (width, height), 255)
        shifted.paste(second, (shift, 0))
        best = min(best, ImageStat.Stat(ImageChops.difference(canvas, shifted)).mean[0])
    return best


def _glyph_boxes(grey: Image.Image, box: Box) -> list[Box]:
    """The glyphs in ``box`` of ``grey``, left to right, each as tall as the box: runs of
    pixel columns holding ink (darker than half way between the box's extremes; lighter on
    a dark ground)."""
    left, top, _right, bottom = box
    crop = grey.crop(box)
    width, pixels = crop.width, crop.tobytes()  # one byte a pixel, row after row
    if not pixels:
        return []
    middle = (min(pixels) + max(pixels)) / 2
    ink_is_light = sum(pixels) < middle * len(pixels)
    glyphs: list[Box] = []
    start = None
    for x in range(width + 1):
        inked = x < width and any((value > middle) == ink_is_light for value in pixels[x::width])
        if inked and start is None:
            start = x
        elif not inked and start is not None:
            glyphs.append((left + start, top, left + x, bottom))
            start = None
    return glyphs


# Around a word's box for its second reading, pixels of the picture as given (Tesseract
# reads a glyph touching the crop's edge badly); and the crop enlarged (OCR_UPSCALE's why).
_WORD_MARGIN: Final = 3
_WORD_UPSCALE: Final = 2
# Tesseract's segmentation "a single text line" and the characters a passport number holds.
# A single line read G47693842 and O746J3993's J where "a single word" (psm 8) lost the J.
_SINGLE_LINE: Final = "7"
_PASSPORT_CHARACTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _word_in_latin(grey: Image.Image, box: Box, languages: str, budget: Budget) -> str | None:
    """What Tesseract reads in the word ``box`` of ``grey`` in ``languages`` as one line of
    passport characters, counted against the budget's seconds; None when not read."""
    seconds = ocr_allowed(budget)
    if seconds is None:
        return None
    left, top, right, bottom = box
    crop = grey.crop((max(0, left - _WORD_MARGIN), max(0, top - _WORD_MARGIN),
                      min(grey.width, right + _WORD_MARGIN),
                      min(grey.height, bottom + _WORD_MARGIN)))  # fmt: skip
    crop = crop.resize((crop.width * _WORD_UPSCALE, crop.height * _WORD_UPSCALE),
                       Image.Resampling.LANCZOS)  # fmt: skip
    out = io.BytesIO()
    crop.save(out, format="PNG", compress_level=1)
    arguments = ["-", "-", "-l", languages, "--psm", _SINGLE_LINE,
               "-c", f"tessedit_char_whitelist={_PASSPORT_CHARACTERS}"]  # fmt: skip
    started = time.monotonic()
    try:
        output = _run_program(arguments, out.getvalue(), seconds)
    finally:
        budget.ocr_seconds += time.monotonic() - started
    return None if output is None else output.decode("utf-8", "replace").strip()


def _split_tsv_and_text(output: str) -> tuple[str, str]:
    """Tesseract's TSV and text outputs of one reading, written one after the other: the TSV
    rows are the lines with its 12 tab-separated fields (OCR text holds no tab)."""
    lines = output.split("\n")
    end = 0
    while end < len(lines) and lines[end].count("\t") == _TSV_FIELDS - 1:
        end += 1
    return "\n".join(lines[:end]), "\n".join(lines[end:])


def _placed(words: Sequence[OcrWord], text: str) -> tuple[PlacedWord, ...]:
    """Each word found in ``text`` in reading order (both outputs walk the page in the same
    order; the text keeps Tesseract's own spacing: no space between Hangul it split into
    words, a blank line between blocks). A word not found there has no place."""
    placed: list[PlacedWord] = []
    position = 0
    for word in words:
        start = text.find(word.text, position, position + _MAX_WORD_GAP + len(word.text))
        # Between two words there is only blank space; a word found past other text is
        # not this one (the two outputs disagree there), so it stays unplaced.
        if start >= 0 and not text[position:start].strip():
            position = start + len(word.text)
            placed.append(PlacedWord(start, position, word.box))
    return tuple(placed)


def words_as_text(words: Sequence[OcrWord]) -> tuple[str, tuple[PlacedWord, ...]]:
    """OCR words as text, a space between the words of one line and a newline between
    lines, and each word's characters in it: how the renderer's masking reads the words it
    paints (``mailsafe.render.masking.pictures``)."""
    parts: list[str] = []
    placed: list[PlacedWord] = []
    length = 0
    previous: tuple[int, int, int] | None = None
    for word in words:
        if previous is not None:
            parts.append(" " if word.line == previous else "\n")
            length += 1
        parts.append(word.text)
        placed.append(PlacedWord(length, length + len(word.text), word.box))
        length += len(word.text)
        previous = word.line
    return "".join(parts), tuple(placed)


def ocr_allowed(budget: Budget) -> float | None:
    """Seconds the next OCR may take, or None when OCR is off or its budget is spent."""
    limits = budget.limits
    if not limits.ocr_languages or budget.ocr_pictures >= limits.ocr_max_pictures:
        return None
    seconds = min(limits.ocr_max_seconds - budget.ocr_seconds,
                  budget.seconds_left() - _RESERVE_SECONDS)  # fmt: skip
    return seconds if seconds >= 1.0 else None


def grey_png_text(
    png: bytes, budget: Budget, languages: str | None = None, *, another_reading: bool = False
) -> str:
    """What Tesseract reads in ``png`` (grey, already at most ``ocr_max_pixels``), counted
    against the budget, in ``languages`` (by default the limits'). ``another_reading`` of a
    picture already counted costs seconds, not another picture."""
    seconds = ocr_allowed(budget)
    if seconds is None:
        return ""
    budget.ocr_pictures += 0 if another_reading else 1
    started = time.monotonic()
    try:
        return read_back(_tesseract(png, languages or budget.limits.ocr_languages, seconds))
    finally:
        budget.ocr_seconds += time.monotonic() - started


# Entries of an icon looked at for their real size (icons hold a handful of sizes).
_MAX_ICON_ENTRIES: Final = 64


def grey_picture(data: bytes, max_pixels: int) -> bytes | None:
    """The picture as a grey PNG of at most ``max_pixels``, or None when it is not decoded."""
    grey = _grey_picture_sized(data, max_pixels)
    return None if grey is None else grey.png


@dataclass(frozen=True)
class _GreyPicture:
    png: bytes
    pixels: tuple[int, int]  # the picture's own width and height, before shrinking
    scale: float  # the picture's pixels per pixel of ``png``


def _grey_picture_sized(data: bytes, max_pixels: int) -> _GreyPicture | None:
    if _icon_pixels(data) > MAX_DECODED_PIXELS:
        return None
    try:
        with warnings.catch_warnings():  # the size is judged here, before any decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # An icon is decoded on opening (its size checked above by _icon_pixels), and
            # Pillow warns when its PNG is larger than the icon's directory says.
            warnings.simplefilter("ignore", UserWarning)
            picture = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
        with picture:
            width, height = picture.size
            pixels = width * height
            if pixels > MAX_DECODED_PIXELS or pixels < MIN_PIXELS or min(width, height) < MIN_SIDE:
                return None
            scale = min(1.0, (max_pixels / pixels) ** 0.5)
            target = (max(1, int(width * scale)), max(1, int(height * scale)))
            picture.draft("L", target)  # JPEG decodes at 1/2, 1/4, 1/8 directly
            grey = picture.convert("L")
            if grey.size != target:
                grey = grey.resize(target, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            grey.save(out, format="PNG", compress_level=1)
            return _GreyPicture(out.getvalue(), (width, height), width / target[0])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError, MemoryError):  # fmt: skip
        return None


def enlarged(png: bytes, max_pixels: int) -> bytes | None:
    """The grey picture ``png`` at OCR_UPSCALE times its size, when it is small enough (at
    most OCR_UPSCALE_MAX_PIXELS) and that fits in ``max_pixels``; else None."""
    with Image.open(io.BytesIO(png), formats=("PNG",)) as picture:
        width, height = picture.size
        pixels = width * height
        if pixels > OCR_UPSCALE_MAX_PIXELS or pixels * OCR_UPSCALE**2 > max_pixels:
            return None
        size = (round(width * OCR_UPSCALE), round(height * OCR_UPSCALE))
        larger = picture.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    larger.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _icon_pixels(data: bytes) -> int:
    """The largest picture in a Windows icon, in pixels, by the PNG headers of its entries
    (an icon's directory says at most 256 x 256, but a PNG entry can be any size; Pillow
    decodes it whole); 0 for anything else."""
    if data[:4] not in (b"\0\0\1\0", b"\0\0\2\0") or len(data) < 6:
        return 0
    (count,) = struct.unpack_from("<H", data, 4)
    largest = 0
    for entry in range(min(count, _MAX_ICON_ENTRIES)):
        position = 6 + 16 * entry
        if position + 16 > len(data):
            break
        (offset,) = struct.unpack_from("<I", data, position + 12)
        header = data[offset : offset + 24]
        if header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) == 24:
            width, height = struct.unpack_from(">II", header, 16)
            largest = max(largest, width * height)
    return largest


def tesseract_command(
    program: str, languages: str, *, boxes: bool = False, text_too: bool = False
) -> list[str]:
    """The command line: the picture on standard input, the text on standard output (with
    ``boxes``, Tesseract's TSV: one row per word with its box; with ``text_too`` as well,
    the TSV and then the text, from one reading)."""
    command = [program, "-", "-", "-l", languages, "--psm", _SPARSE_TEXT]
    if not boxes:
        return command
    return [*command, "tsv", "txt"] if text_too else [*command, "tsv"]


def _tesseract(png: bytes, languages: str, seconds: float) -> str:
    output = _run_tesseract(png, languages, seconds, boxes=False)
    return "" if output is None else output.decode("utf-8", "replace")


def _run_tesseract(
    png: bytes, languages: str, seconds: float, *, boxes: bool, text_too: bool = False
) -> bytes | None:
    """Tesseract's standard output, or None when it is missing, failed or ran out of time."""
    arguments = tesseract_command("", languages, boxes=boxes, text_too=text_too)[1:]
    return _run_program(arguments, png, seconds)


def _run_program(arguments: Sequence[str], png: bytes, seconds: float) -> bytes | None:
    """The standard output of ``tesseract *arguments`` given ``png`` on its standard input,
    or None when the program is missing, failed or ran out of time."""
    program = tesseract_path()
    if program is None:  # removed since the agent started: as with OCR off
        return None
    # One thread: the reader is one of several processes on the machine, and OpenMP's
    # threads make Tesseract slower, not faster, on a busy two-core box.
    environment = {"PATH": os.environ.get("PATH", "/usr/bin"), "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [program, *arguments],
            input=png,
            capture_output=True,
            timeout=seconds,
            env=environment,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    return done.stdout if done.returncode == 0 else None


# ---------------------------------------------------------------------------- word boxes


@dataclass(frozen=True)
class OcrWord:
    """One word Tesseract read, with its box in the pixels of the picture it was given."""

    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom
    line: tuple[int, int, int]  # Tesseract's block, paragraph and line numbers


def image_reading(image: Image.Image, budget: Budget) -> WordReading | str:
    """The words in ``image`` (already decoded, any mode), read as the scan reads a picture
    (:func:`_word_reading`), with their boxes in its pixels; or the reason (one of
    ``OCR_NOT_RUN``) they could not be read. A picture too small to hold a line of text has
    no words (the rule of :func:`grey_picture`)."""
    width, height = image.size
    pixels = width * height
    if pixels < MIN_PIXELS or min(width, height) < MIN_SIDE:
        return WordReading("", ())
    if not budget.limits.ocr_languages or tesseract_path() is None:
        return "ocr_unavailable"
    seconds = ocr_allowed(budget)
    if seconds is None:
        return "ocr_budget"
    scale = min(1.0, (budget.limits.ocr_max_pixels / pixels) ** 0.5)
    grey = image.convert("L")
    if scale < 1.0:
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        grey = grey.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    grey.save(out, format="PNG", compress_level=1)
    reading = _word_reading(out.getvalue(), budget, seconds)
    return "ocr_failed" if reading is None else reading.scaled(1.0 / scale)


def parse_tsv(tsv: bytes, scale: float = 1.0) -> tuple[OcrWord, ...]:
    """The words of Tesseract's TSV output (level 5 rows), boxes multiplied by ``scale``."""
    words: list[OcrWord] = []
    for row in tsv.decode("utf-8", "replace").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) != _TSV_FIELDS or cells[0] != "5" or not cells[11].strip():
            continue
        try:
            block, paragraph, line, left, top, width, height = map(int, cells[2:5] + cells[6:10])
        except ValueError:
            continue
        box = (math.floor(left * scale), math.floor(top * scale),
               math.ceil((left + width) * scale), math.ceil((top + height) * scale))  # fmt: skip
        words.append(OcrWord(cells[11].strip(), box, (block, paragraph, line)))
        if len(words) >= MAX_OCR_WORDS:
            break
    return tuple(words)
