"""Identifiers read back from OCR's misreadings (issue 19, Done line 1: PNG through OCR).

The readings below are what Tesseract returned for the labelled set's screenshots (15 px
NanumGothic): the MRZ filler "<" as K, C, ¢, «, {; S as $ or 5; O as 0; spaces inside the
number line. Before the read-back none of these zones was found (recall 0 on passport_mrz).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mailsafe.extract import ExtractLimits, ocr
from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr import enlarged, picture_text, picture_words, with_new_findings
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
from mailsafe.pii import detect
from mailsafe.pii.text_finders import mrz_check_ok
from tests.support.documents import make_screenshot

# (what OCR read, the number line printed)
NUMBER_LINES = [
    ("M760483264KORG009 164F27040362213309¢<<<<<<40",
     "M760483264KOR6009164F27040362213309<<<<<<<40"),
    ("M323078504KOR67 10255F2703235 187641 2¢<<<<{<(72 / 본인 HAS AS 161024-3105094 입니다",
     "M323078504KOR6710255F27032351876412<<<<<<<72"),
    ("$523537861KOR3808159M34120642304871<<<<<«<98 / SLACK_TOKEN=x0xb",
     "S523537861KOR3808159M34120642304871<<<<<<<98"),
    ("552353786 1 KOR3808 159M 3412064230487 1<<<<<<<98",
     "S523537861KOR3808159M34120642304871<<<<<<<98"),
    ("M240524788KOR4005047F3004 124164027 1<<<<K<<92",
     "M240524788KOR4005047F30041241640271<<<<<<<92"),
]  # fmt: skip


def kinds(text: str) -> list[str]:
    return [f.type for f in detect(text)]


@pytest.mark.parametrize(("read", "printed"), NUMBER_LINES)
def test_an_mrz_number_line_is_read_back_when_its_check_digits_hold(
    read: str, printed: str
) -> None:
    assert kinds(read).count("passport_mrz") == 0  # as OCR gave it: nothing
    assert mrz_number_line(read) == printed
    assert "passport_mrz" in kinds(read_back(read))


def test_a_reading_whose_check_digits_fail_is_refused() -> None:
    """Two of the three check digits must hold, as for text as written: one wrong digit in
    each of two fields and the reading is no MRZ line."""
    read = "M760483264KOR6009164F27040362213309<<<<<<<40"
    assert mrz_number_line(read) is not None
    broken = read[:3] + "1" + read[4:15] + "8" + read[16:]  # document and birth changed
    assert not mrz_check_ok(broken[:9], broken[9])
    assert mrz_number_line(broken) is None
    assert read_back(broken) == broken


@pytest.mark.parametrize(
    "text",
    [
        "ABC<<DEF<<<1234567890<<<<",  # the labelled set's not-MRZ look-alike
        "<<<<<<<<<<<<<<<<<<<< 구분선 >>>>>>>>>>>>>>>>>>>>",
        "SLACK_TOKEN=xoxb-458689722450-XqUR2abV50hXxaSwcoXjLCq9 KKKKKKKKKKKKKKKK",
        "12345678901234567890123456789012345678901234567890",
    ],
)
def test_other_ocr_lines_are_left_as_read(text: str) -> None:
    assert read_back(text) == text


def test_the_name_line_above_an_accepted_number_line_is_read_back() -> None:
    read = "Passport scan:\n\nPKKORHONG CC MINIICCCC KKK KK\n\n" + NUMBER_LINES[0][0]
    lines = read_back(read).splitlines()
    assert lines[-2] == "P<KORHONG<<MINII<<<<<<<<<<<<<<<<<<<<<<<<<<<<"
    assert lines[-1] == NUMBER_LINES[0][1]
    assert kinds(read_back(read)).count("passport_mrz") == 2


def test_fillers_without_a_whole_zone_read_ask_for_a_second_reading() -> None:
    assert unread_mrz("PKKORKIMC IHOONCKK KKK KKK\n04/3230785040[671025다2703235187641")
    assert not unread_mrz("PKKORHONG CC MINIICCCC KKK KK\n" + NUMBER_LINES[0][0])
    assert not unread_mrz("고객 명단\n김철수 800101-1234560")
    # A number line accepted, but the name line above came out in Hangul: read again.
    assert unread_mrz("『<10띠시6<식비이81<<<<<<<<<<<<<<<<\n" + NUMBER_LINES[0][0])


def test_a_name_line_without_a_number_line_below_is_not_read_back() -> None:
    read = "PKKORHONG CC MINIICCCC KKK KK"
    assert read_back(read) == read


@pytest.mark.parametrize(
    ("read", "value"),
    [
        ("여권번호: 605452849", "G05452849"),
        ("여권번호: $30233837", "S30233837"),
        ("Passport no. 511292554", "S11292554"),
        ("여권 077338513 / 만료일 2030-05-01", "O77338513"),
    ],
)
def test_a_passport_letter_read_as_a_digit_is_given_back_under_its_label(
    read: str, value: str
) -> None:
    assert "passport" not in kinds(read)
    assert [(f.type, f.text) for f in detect(read_back(read)) if f.type == "passport"] == [
        ("passport", value)
    ]


@pytest.mark.parametrize("read", ["주문번호: 605452849", "605452849", "여권 신청 건수 512345678개"])
def test_nine_digits_without_a_passport_label_stay_digits(read: str) -> None:
    """No label, or a count glued on: the digits stay as read."""
    assert "passport" not in kinds(read_back(read))


def test_a_private_key_whose_armour_dashes_ocr_lost_is_found() -> None:
    read = (
        "서버 키 첨부합니다:\n~----BEGIN RSA PRIVATE KEY\n"
        "t811mKdS8igENKKDpAl+w46vsSOXANEOwkmsPOcnlxYGEZWpoOFVuviShF3DG6D\n"
        "~----END RSA PRIVATE KEY-----"
    )
    assert "secret" not in kinds(read)
    assert kinds(read_back(read)) == ["secret"]


@pytest.mark.parametrize(
    ("read", "value"),
    [("23-19-577364- 14", "23-19-577364-14"), ("면허번호 23 -19-577364-14", "23-19-577364-14")],
)
def test_a_hyphen_with_a_space_on_one_side_only_joins_its_groups(read: str, value: str) -> None:
    assert kinds(read) == []
    assert [(f.type, f.text) for f in detect(read_back(read))] == [("driver_license", value)]


@pytest.mark.parametrize(
    ("read", "kind", "value"),
    [
        # What Tesseract read of the labelled set's row 241 (printed "980127 - 6925483").
        ("외국인 근로자 John Smith, 외국인번호 980 127 - 6925483", "foreigner_id",
         "980127 - 6925483"),
        ("주민번호 9001 01-1234568", "rrn", "900101-1234568"),
        ("주민등록번호: 90 0101 - 2234563", "rrn", "900101 - 2234563"),
    ],
)  # fmt: skip
def test_a_birth_date_ocr_split_with_a_space_is_joined_again(
    read: str, kind: str, value: str
) -> None:
    assert kinds(read) == []
    assert [(f.type, f.text) for f in detect(read_back(read))] == [(kind, value)]


@pytest.mark.parametrize(
    "read",
    [
        "수량 12 980 127 - 6925483",  # a digit group before: the split is not the date's
        "합계 1 980 127-6925483",
        "코드 981 327 - 6925483",  # month 13: no date
        "코드 980 127 - 9925483",  # gender digit 9 is of the 1800s, not 1998
        "980 1270 - 6925483",  # seven digits before the hyphen
        "전화 010 123 - 4567890",  # joined, and still judged by the detector: a phone label
    ],
)
def test_digit_groups_that_are_not_a_split_birth_date_stay_unfound(read: str) -> None:
    assert kinds(read_back(read)) == []


@pytest.mark.parametrize(
    ("read", "kind", "value"),
    [
        ("OPENAI_API_KEY: sk-proj-MSsxDX3DxbW GutNHGzSHzg RhP6FXmdopHjJyp VRF", "secret",
         "sk-proj-MSsxDX3DxbWGutNHGzSHzgRhP6FXmdopHjJyp"),
        ("토큰 ghp_XaVLURJFS7dUOtzqcKPsAZ9OC 1 IhJkwZLByc 로 접속하세요", "secret",
         "ghp_XaVLURJFS7dUOtzqcKPsAZ9OC1IhJkwZLByc"),
        ("SLACK_TOKEN=xoxb-45 8689722450-XqUR2abV50hXxaSwcoxjLCq9", "secret",
         "xoxb-458689722450-XqUR2abV50hXxaSwcoxjLCq9"),
        ("DB 접속: postgres://app_user:OvxMcxrF %52@pg-prod.internal:5432/erp", "secret",
         "OvxMcxrF%52"),
        ("DB 접속: postgres://app_user:U1tuDkZl#09@ db.corp.example:5432/erp", "secret",
         "U1tuDkZl#09"),
        ("메일: s.park52 @korea.kr / 법인카드", "email", "s.park52@korea.kr"),
        ("메일: minji @naver.com", "email", "minji@naver.com"),  # a name: a local part
        ("문의: contact @acme.co", "email", "contact@acme.co"),  # a mailbox's own name
    ],
)  # fmt: skip
def test_what_ocr_cut_with_a_space_is_joined_again(read: str, kind: str, value: str) -> None:
    """Tesseract's sparse mode put spaces inside long tokens (as read from the labelled set's
    screenshots); cut, no token pattern matched."""
    assert (kind, value) not in [(f.type, f.text) for f in detect(read)]
    assert (kind, value) in [(f.type, f.text) for f in detect(read_back(read))]


@pytest.mark.parametrize(
    "read",
    [
        "sk-telecom partners meeting",
        "sk-proj-abcDEF123 and more words",
        "@minji 회의 자료",
        "https://wiki.example/@ team.notes",  # no password before the "@"
    ],
)
def test_words_after_a_prefix_are_not_joined(read: str) -> None:
    assert read_back(read) == read


@pytest.mark.parametrize(
    "read",
    ["follow us @acme.co for updates", "Follow Us @acme.co", "find me @corp.example",
     "tag the team and @acme.co", "reach them at @acme.co", "질문은 DM @acme.co"],
)  # fmt: skip
def test_an_ordinary_word_before_a_spaced_at_sign_is_not_joined_to_it(read: str) -> None:
    """Was a false e-mail address: "follow us @acme.co" read back as "us@acme.co". A sentence's
    word before a handle is no local part (ocr_reading.ORDINARY_WORDS)."""
    assert read_back(read) == read
    assert "email" not in [f.type for f in detect(read_back(read))]


def _grey(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG")
    return out.getvalue()


def test_small_pictures_are_read_enlarged_too_within_the_pixel_limit() -> None:
    larger = enlarged(_grey(1000, 600), 4_000_000)  # a window: read twice as large too
    assert larger is not None
    assert Image.open(io.BytesIO(larger)).size == (2000, 1200)
    assert enlarged(_grey(1000, 600), 2_000_000) is None  # would not fit: its own size only
    assert enlarged(_grey(1600, 900), 20_000_000) is None  # a page or a full screen: as before


# ---- through the real Tesseract: screenshots of the labelled set's rows ------------------------

ON = ExtractLimits(ocr_languages="kor+eng")


def _read(lines: list[str]) -> list[tuple[str, str]]:
    """What the scan finds in a screenshot of ``lines``: its reading with word boxes (the
    path attachments take), read back and read again as ``picture_text`` does."""
    text, _layout = picture_words(make_screenshot(lines), Budget(ON))
    return [(f.type, f.text) for f in detect(text)]


@pytest.mark.parametrize(
    "zone",
    [
        ["P<KORHONG<<MINJI<<<<<<<<<<<<<<<<<<<<<<<<<<<<", NUMBER_LINES[0][1]],
        ["Passport scan:", "P<KORCHOI<<MINJI<<<<<<<<<<<<<<<<<<<<<<<<<<<<",
         "S841804612KOR8206059M28092851973839<<<<<<<26"],
        # Enlarged, this one's number line came out in pieces: the Latin reading finds it.
        ["여권 사본 판독 결과:", "P<KORKIM<<JIHOON<<<<<<<<<<<<<<<<<<<<<<<<<<<<",
         "M323078504KOR6710255F27032351876412<<<<<<<72"],
    ],
)  # fmt: skip
def test_a_screenshot_of_a_passport_zone_is_found(zone: list[str]) -> None:
    """Was never found: Tesseract reads "<" as K or C and S as $, and no MRZ line matched."""
    found = _read(zone)
    assert ("passport_mrz", zone[-1]) in found, found


@pytest.mark.parametrize(
    ("line", "value"),
    [("여권번호: G05452849", "G05452849"), ("여권번호: S30233837", "S30233837")],
)
def test_a_screenshot_of_a_passport_number_is_found(line: str, value: str) -> None:
    """Was missed: read at screen size, the letter came out a digit (605452849, 530233837)."""
    assert ("passport", value) in _read([line])


def test_a_screenshot_is_read_at_its_own_size_and_enlarged() -> None:
    """The word the enlarged reading finds and the one only the own-size reading finds are
    both in the text; the extra reading costs time, not a picture of the budget."""
    budget = Budget(ON)
    text = picture_text(make_screenshot(["여권번호: G05452849"]), budget)
    assert "G05452849" in text  # enlarged (own size: 605452849)
    assert budget.ocr_pictures == 1


def test_a_second_reading_adds_only_lines_with_findings_the_first_did_not_have() -> None:
    first = "고객 명단\n김철수 800101-1234560 여권 605452849\n운전면허번호: BF 93-550717-89"
    second = (
        "고객 명단\n김철수 800101 - 1234560 여권 G05452849\n운전면허번호: 광주 93-550717-89\n"
        "주민번호 800101-1234560"
    )
    assert with_new_findings(first, second) == (
        f"{first}\n김철수 800101 - 1234560 여권 G05452849\n운전면허번호: 광주 93-550717-89"
    )
    assert with_new_findings(first, first) == first  # nothing new: one finding, not two


# ---- third round (issue 19): what the PNG sample of 665 rows showed ---------------------------
# Each reading is what Tesseract returned for a row of the labelled set's screenshots.


@pytest.mark.parametrize(
    ("read", "kind", "value"),
    [
        # full-width digits on screen, read one by one
        ("운전면허증사본(19 - 0 1- 9 9 02 6 2 - 6 3)", "driver_license", "19-01-990262-63"),
        ("출장자 여권번호 5 3 5 9 6 7 6 0 7 입니다.", "passport", "S35967607"),
        # a hyphen with a space on one side, another with both: one separator per number
        ("충북59 -413885 - 77", "driver_license", "충북59-413885-77"),
        # a passport number under its label with 0 read as O and a space put in
        ("PassportNo. RO5 7N3719", "passport", "R057N3719"),
        ("여권번호: M1234 5678", "passport", "M12345678"),
    ],
)
def test_what_a_reader_sees_in_ocrs_digit_groups_is_found(read: str, kind: str, value: str) -> None:
    assert kind not in kinds(read)
    assert [(f.type, f.text) for f in detect(read_back(read))] == [(kind, value)]


@pytest.mark.parametrize(
    ("read", "becomes"),
    [
        ("순위 1 2 3", "순위 1 2 3"),  # three single digits: not read as one number
        ("연락처: 010 0225 2737", "연락처: 010 0225 2737"),  # groups, not spaced-out digits
        ("2024-01-02 - 010-1234-5678", "2024-01-02 - 010-1234-5678"),  # no lopsided hyphen
        ("여권 신청 A1234 5678개", "여권 신청 A1234 5678개"),  # a count
        ("Passport holder SMITH JOHN", "Passport holder SMITH JOHN"),  # no digits
        ("주문번호 RO5 7N3719", "주문번호 RO5 7N3719"),  # no passport label
        ("여권 접수 12건, 대기 1 2 3 4 5", "여권 접수 12건, 대기 12345"),  # joined, nothing found
    ],
)
def test_look_alike_digit_groups_stay_unfound(read: str, becomes: str) -> None:
    assert read_back(read) == becomes
    assert kinds(read_back(read)) == kinds(read)


def test_a_name_ending_in_e_keeps_its_letters_before_the_fillers() -> None:
    read = "PCKORLEECCIIHOONC KK KCK KKKKEKKK KEK\n\n$111547625KOR3602209M29022671238529¢<<<<<{20"
    lines = read_back(read).splitlines()
    assert lines[-2] == "P<KORLEE<<IIHOON<<<<<<<<<<<<<<<<<<<<<<<<<<<<"
    assert lines[-1] == "S111547625KOR3602209M29022671238529<<<<<<<20"


@pytest.mark.parametrize(
    ("read", "armour"),
    [
        ("“END RSA PRIVATE KEY~", "-----END RSA PRIVATE KEY-----"),
        ("---BEGIN RSA PRIVATE KEY:", "-----BEGIN RSA PRIVATE KEY-----"),
    ],
)
def test_an_armour_line_in_quotes_or_with_a_colon_gets_its_dashes(read: str, armour: str) -> None:
    assert read_back(read) == armour


# ---- fourth round (issue 19): a passport number's letter read as a digit, unlabelled ----------
# The Korean model read these rows' screenshots as nine digits (647693842, 068953794,
# 074613993): the word's own pixels are read again (Latin model; the width of a leading 0).


@pytest.mark.parametrize(
    ("line", "value"),
    [
        # a second reading's line took the licence label beside it; the first is read again
        ("G47693842 / 운전면허번호: 146549672429", "G47693842"),
        # in a roster, O drawn as wide as a letter (the digit 0 is narrower in this font)
        ("명단: 최수진, O68953794, 개발팀", "O68953794"),
        ("명단: 최수진, O746J3993, 개발팀", "O746J3993"),
        ("O12345678", "O12345678"),
        # alone, S drawn unlike the word's other 5s (the Latin model read it as 8)
        ("S11292554", "S11292554"),
        ("S35967607", "S35967607"),
    ],
)
def test_an_unlabelled_passport_number_read_as_digits_is_found(line: str, value: str) -> None:
    """Was missed: nine digits without a passport label stay digits (D79)."""
    found = _read([line])
    assert ("passport", value) in found, found


@pytest.mark.parametrize(
    "line",
    ["012345678", "647693842", "511292554", "535967607", "055512345", "주문번호 068953794",
     "명단: 김철수, 000000000", "주문번호: 012345678, 고객번호: 612345678"],
)  # fmt: skip
def test_nine_digits_drawn_as_digits_stay_unfound_in_a_screenshot(line: str) -> None:
    """The Latin model and the glyphs' widths and shapes read a real 0, 5 or 6 as the digit
    it is."""
    found = _read([line])
    assert "passport" not in [kind for kind, _value in found], found


@pytest.mark.parametrize(
    ("word", "span"),
    [("647693842", (0, 9)), ("068953794,", (0, 9)), ("(511292554)", (1, 10)),
     ("M12345678", None), ("147693842", None), ("6476938421", None), ("64769384", None)],
)  # fmt: skip
def test_only_nine_digits_led_by_a_letters_lookalike_are_read_again(
    word: str, span: tuple[int, int] | None
) -> None:
    assert passport_suspect(word) == span


@pytest.mark.parametrize(
    ("as_read", "latin", "taken"),
    [
        ("647693842", "G47693842", "G47693842"),
        ("074613993", "O746J3993", "O746J3993"),  # the letter inside too
        ("511292554", "S11292554", "S11292554"),
        ("647693842", "647693842", None),  # digits read as digits
        ("647693842", "M47693842", None),  # M is not what OCR makes a 6 of
        ("647693842", "G47693843", None),  # a digit that differs: another number
        ("074613993", "O746A3993", None),  # A is not what OCR makes a 1 of
        ("647693842", "G4769384", None),  # a character lost
    ],
)
def test_the_latin_reading_is_taken_only_for_the_letters_ocr_confuses(
    as_read: str, latin: str, taken: str | None
) -> None:
    assert passport_from_latin(as_read, latin) == taken


@pytest.mark.parametrize(
    ("widths", "wide"),
    [
        ([10, 7, 7, 7, 6, 7, 7, 7, 8], True),  # O68953794 at 15-pixel text
        ([10, 4, 7, 7, 8, 6, 7, 7, 7], True),  # O12345678: the narrow 1 does not move it
        ([7, 7, 7, 7, 6, 7, 7, 7, 8], False),  # 068953794
        ([14, 7, 7, 7, 6, 7, 7, 7, 8], False),  # two glyphs run together
        ([10, 7, 7, 7, 6, 7, 7, 7], False),  # not nine glyphs: not told apart
    ],
)
def test_a_first_glyph_wider_than_a_digit_is_a_letter(widths: list[int], wide: bool) -> None:
    assert wide_first_glyph(widths) is wide


@pytest.mark.parametrize(
    ("differences", "unlike"),
    [([33.8, 33.8], True), ([55.9], True), ([0.0, 33.8], False), ([12.0], False), ([], False)],
)
def test_a_first_glyph_unlike_each_twin_is_a_letter(differences: list[float], unlike: bool) -> None:
    """S against the word's 5s (33.8), G against its 6s (55.9); like one twin, or no twin to
    compare with: the digit it was read as."""
    assert unlike_its_twins(differences) is unlike


@pytest.mark.parametrize(
    ("reading", "as_read", "lettered"),
    [("511292554", "511292554", "S11292554"), ("811292554", "511292554", "S11292554"),
     ("068953794", "068953794", "O68953794"), ("G47693842", "647693842", "G47693842")],
)  # fmt: skip
def test_the_leading_letter_is_the_one_ocr_reads_as_that_digit(
    reading: str, as_read: str, lettered: str
) -> None:
    assert with_leading_letter(reading, as_read) == lettered


def test_a_passport_zones_document_number_is_not_read_again_as_a_passport() -> None:
    """The zone's number line, read "552353786 1 KOR3808 ...", is the zone (read back by its
    check digits), not a passport number S52353786 beside it: one finding, not two."""
    zone = ["Passport scan:", "P<KORKIM<<HYUN<WOO<<<<<<<<<<<<<<<<<<<<<<<<<<",
            "S523537861KOR3808159M34120642304871<<<<<<<98 / SLACK_TOKEN=xoxb-458689722450-"
            "XqUR2abV50hXxaSwcoXjLCq9"]  # fmt: skip
    found = _read(zone)
    assert ("passport_mrz", zone[-1][:44]) in found, found
    assert "passport" not in [kind for kind, _value in found], found


def test_a_word_larger_than_the_limit_is_left_as_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A "word" a crafted picture makes of its whole area is not walked pixel by pixel."""
    line = "G47693842 / 운전면허번호: 146549672429"
    assert ("passport", "G47693842") in _read([line])
    monkeypatch.setattr(ocr, "MAX_REREAD_WORD_PIXELS", 500)  # the word is 83 x 11 pixels
    assert "passport" not in [kind for kind, _value in _read([line])]


def test_words_read_again_are_few_and_cost_seconds_not_pictures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[list[str]] = []
    real = ocr._run_program

    def counted(arguments: list[str], png: bytes, seconds: float) -> bytes | None:
        runs.append(list(arguments))
        return real(arguments, png, seconds)

    monkeypatch.setattr(ocr, "_run_program", counted)
    budget = Budget(ON)
    line = "  ".join(f"64769384{digit}" for digit in range(MAX_PASSPORT_REREADS + 3))
    text, _layout = picture_words(make_screenshot([line]), budget)
    word_readings = [arguments for arguments in runs if "--psm" in arguments
                     and arguments[arguments.index("--psm") + 1] == "7"]  # fmt: skip
    assert len(word_readings) == MAX_PASSPORT_REREADS
    assert budget.ocr_pictures == 1
    assert "passport" not in kinds(text)


@pytest.mark.parametrize(
    ("read", "value"),
    [
        ("길동) / 운전면허번호: 대전 58 14412435", "대전 58 144124 35"),
        ("운전면허번호: 대전 58144124 35", "대전 58 144124 35"),
    ],
)
def test_a_licence_whose_space_ocr_lost_gets_its_groups_back(read: str, value: str) -> None:
    """Was missed: "대전 58 144124 35" read with its last space lost, twelve digits in groups
    of 2 and 8 are no licence number's shape."""
    assert "driver_license" not in kinds(read)
    assert [(f.type, f.text) for f in detect(read_back(read))] == [("driver_license", value)]


@pytest.mark.parametrize(
    "read", ["전화 02 12345678 / 대전 58 14412435", "면허 갱신 12 34567890 원",
             "운전면허 시험 신청자 5명, 문의 02 12345678"],
)  # fmt: skip
def test_two_digit_groups_without_a_licence_label_before_them_stay_apart(read: str) -> None:
    assert "driver_license" not in kinds(read_back(read))
