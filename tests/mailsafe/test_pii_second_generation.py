"""Issue 19, items 1, 2 and 4: context a person would use, the new kinds, masked means masked.

Each case names the miss or false alarm it reproduces; the cases marked "was missed" or
"was flagged" fail on the detector before issue 19.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maildiode.cli import main
from mailsafe.extract import extract_locations
from mailsafe.mime import parse_message
from mailsafe.pii import PII_TYPES, detect
from mailsafe.pii.checks import registration_check_digit_ok
from mailsafe.pii.text_finders import mrz_check_ok
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.scan import scan_message
from tests.support.documents import make_docx, make_mail, make_xlsx

SENDER = SenderInfo("kim@corp.example", "영업팀")


# Post-October-2020 numbers: a valid date and gender digit, a last digit that is no check digit.
def _post_2020(index: int) -> str:
    twelve = (
        f"{70 + index % 30:02d}{index % 12 + 1:02d}{index % 28 + 1:02d}{1 + index % 2}{index:05d}"
    )
    last = next(d for d in "0123456789" if not registration_check_digit_ok(twelve + d))
    return f"{twelve[:6]}-{twelve[6:]}{last}"


NEW_RRNS = [_post_2020(index) for index in range(100)]


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in detect(text)]


def found_types(raw: bytes) -> list[str]:
    return [lf.finding.type for lf in scan_message(raw, default_rules(), SENDER).findings]


# ---- (a) column headers: the header names the number once, the rows carry no label -------


def customer_rows(separator: str, rows: int = 60) -> str:
    header = separator.join(["번호", "이름", "주민등록번호", "운전면허번호", "비고"])
    lines = [header] + [
        separator.join(
            [
                str(i),
                f"고객{i}",
                NEW_RRNS[i % len(NEW_RRNS)].replace("-", ""),
                f"1{i % 8 + 1}{i:02d}345678{i % 10}0",
                "-",
            ]
        )
        for i in range(rows)
    ]
    return "\n".join(lines)


@pytest.mark.parametrize("separator", ["\t", ",", ";", "|"])
def test_a_column_header_labels_every_row_of_a_long_table(separator: str) -> None:
    """Was missed: bare post-2020 numbers and bare licences far below their header."""
    table = customer_rows(separator)
    found = kinds(table)
    assert [kind for kind, _ in found].count("rrn") == 60
    assert [kind for kind, _ in found].count("driver_license") == 60


def test_a_column_header_of_another_kind_wins_over_the_shape() -> None:
    """Was flagged: a corporate-number column holds numbers in a resident number's shape."""
    table = "회사명,법인등록번호,대표\n" + "\n".join(
        f"회사{i},{NEW_RRNS[i]},대표{i}" for i in range(40)
    )
    assert [kind for kind, _ in kinds(table)] == []


def test_xlsx_and_docx_tables_carry_their_header() -> None:
    """Was missed: an XLSX sheet and a DOCX table whose rows hold bare post-2020 numbers."""
    rows: list[list[object]] = [["이름", "주민등록번호"]] + [
        [f"고객{i}", NEW_RRNS[i].replace("-", "")] for i in range(30)
    ]
    xlsx = make_mail(attachments=[("명단.xlsx", make_xlsx(rows))])
    assert found_types(xlsx).count("rrn") == 30
    docx_text = "\n".join("\t".join(str(c) for c in row) for row in rows)
    docx = make_mail(attachments=[("명단.docx", make_docx(docx_text))])
    assert found_types(docx).count("rrn") == 30


def test_html_table_header_labels_its_column() -> None:
    """Was missed: an HTML table, its header in <th>, bare numbers in the rows."""
    cells = "".join(f"<tr><td>고객{i}</td><td>{NEW_RRNS[i].replace('-', '')}</td></tr>"
                    for i in range(20))  # fmt: skip
    html = f"<table><tr><th>이름</th><th>주민등록번호</th></tr>{cells}</table>"
    assert found_types(make_mail(text=None, html=html)).count("rrn") == 20


@pytest.mark.parametrize(
    "text",
    [
        "계약번호 900101-1234567",
        "고객번호: 900101-1234567",
        "사번 9001011234560",
        "제품번호 900101-1234567",
        "회원번호 900101-1234567",
        "법인등록번호 110111-1234569",
        "카드번호 110-123-456789",  # an explicit card label: no account
    ],
)
def test_an_explicit_label_of_another_kind_wins(text: str) -> None:
    """The number's own label says what it is (계약번호, 고객번호, 회원번호 and the corporate
    label were flagged before issue 19)."""
    assert kinds(text) == []


@pytest.mark.parametrize(
    "text",
    ["800101-1******", "800101-*******", "010-****-5678", "4111-****-****-1111",
     "110-***-******", "M12******", "서울 12-******-**", "***-****-5678"],
)  # fmt: skip
def test_already_masked_numbers_are_not_flagged(text: str) -> None:
    assert kinds(text) == []


def test_corporate_numbers_are_no_resident_numbers() -> None:
    """Was flagged: a corporate registration number (registry prefix, corporate check digit,
    no resident check digit) written without its label."""
    assert kinds("(주)한빛 110111-1234569, 대표 홍길동") == []
    # With a resident label the same digits are a person's number after all.
    assert kinds("주민번호 110111-1234569") == [("rrn", "110111-1234569")]


def test_post_2020_numbers_found_with_context_not_on_bare_shape() -> None:
    bare = NEW_RRNS[0].replace("-", "")
    assert kinds(f"주민등록번호 {bare}") == [("rrn", bare)]
    assert kinds(f"참고 {bare}") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("서울 1234567890", "서울 1234567890"),  # was missed
        ("면허: 경기북부2012345678", "경기북부2012345678"),  # was missed
        ("운전면허번호 111234567890", "111234567890"),
    ],
)
def test_licences_without_separators(text: str, value: str) -> None:
    assert kinds(text) == [("driver_license", value)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("KB국민 123456-01-123456", "123456-01-123456"),
        ("NH농협 301-1234-5678-91", "301-1234-5678-91"),
        ("우리 1002-123-456789", "1002-123-456789"),  # was missed
        ("하나 123-456789-12345", "123-456789-12345"),  # was missed
        ("IBK기업 123-123456-01-012", "123-123456-01-012"),
        ("SC제일 123-45-678901", "123-45-678901"),
        ("새마을금고 9002-1234-5678-9", "9002-1234-5678-9"),  # was missed (4-4-4-1)
        ("우체국 123456-01-123456", "123456-01-123456"),
        ("카카오뱅크 3333-12-1234567", "3333-12-1234567"),
        ("토스뱅크 1000-1234-5678", "1000-1234-5678"),
        ("케이뱅크 100-123-456789", "100-123-456789"),
        ("입금은 국민 123456-01-123456 으로", "123456-01-123456"),
    ],
)
def test_accounts_after_abbreviated_bank_names(text: str, value: str) -> None:
    assert kinds(text) == [("bank_account", value)]


# ---- (b) new kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "masked"),
    [
        ("연락처 010-1234-5678", "010-1234-5678", "010-****-****"),
        ("H.P 010 1234 5678", "010 1234 5678", "010 **** ****"),
        ("01012345678", "01012345678", "010********"),
        ("전화 02-123-4567", "02-123-4567", "02-***-****"),
        ("031-1234-5678", "031-1234-5678", "031-****-****"),
        ("tel 0311234567", "0311234567", "031*******"),
        ("０１０－１２３４－５６７８", "０１０－１２３４－５６７８", "０１０－****－****"),
    ],
)
def test_phones_found_and_masked(text: str, value: str, masked: str) -> None:
    (finding,) = detect(text)
    assert (finding.type, finding.text, finding.masked) == ("phone", value, masked)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("연락처: 0 1 0 1 2 3 4 5 6 7 8 입니다", "0 1 0 * * * * * * * *"),
        ("연락처: 0 1 0 - 1 2 3 4 - 5 6 7 8", "0 1 0 - * * * * - * * * *"),
        ("연락처 공일공일이삼사오육칠팔", "공일공********"),
    ],
)
def test_a_disguised_phone_number_is_masked_too(text: str, masked: str) -> None:
    """The spaced forms were shown whole as their own "masked" form: the evasion pass found
    the number, the phone's head pattern (a plain "010") did not match, so nothing was hidden.
    Digit words are rewritten to ASCII before masking (the control)."""
    (finding,) = detect(text)
    assert (finding.type, finding.masked) == ("phone", masked)


@pytest.mark.parametrize(
    "text", ["0311234567", "주문번호 010-1234-5678", "2024-07-15", "1588-1234", "010-1234-567"]
)
def test_phone_lookalikes_refused(text: str) -> None:
    assert [k for k, _ in kinds(text) if k == "phone"] == []


@pytest.mark.parametrize(
    ("text", "value", "masked"),
    [
        ("문의: hong.gildong@example.co.kr 로", "hong.gildong@example.co.kr",
         "h***.*******@example.co.kr"),
        ("<kim_01+tag@mail.corp.example>", "kim_01+tag@mail.corp.example",
         "k**_**+***@mail.corp.example"),
    ],
)  # fmt: skip
def test_emails_found_and_masked(text: str, value: str, masked: str) -> None:
    (finding,) = detect(text)
    assert (finding.type, finding.text, finding.masked) == ("email", value, masked)


@pytest.mark.parametrize("text", ["cid:image001.png@01D9A1B2.C3D4E5F0", "user@localhost", "a @ b"])
def test_email_lookalikes_refused(text: str) -> None:
    assert kinds(text) == []


def test_emails_in_the_mails_own_headers_are_not_findings() -> None:
    raw = make_mail(subject="회의", text="담당: lee@partner.example")
    result = scan_message(raw, default_rules(), SENDER)
    emails = [(lf.where, lf.finding.text) for lf in result.findings if lf.finding.type == "email"]
    assert emails == [("body.text", "lee@partner.example")]


def _mrz_digit(field: str) -> str:
    values = [int(c) if c.isdigit() else 0 if c == "<" else ord(c) - 55 for c in field]
    return str(sum(v * (7, 3, 1)[i % 3] for i, v in enumerate(values)) % 10)


def mrz(document: str = "M12345678", birth: str = "800101", expiry: str = "300101") -> str:
    line2 = (f"{document}{_mrz_digit(document)}KOR{birth}{_mrz_digit(birth)}M{expiry}"
             f"{_mrz_digit(expiry)}{'<' * 14}<0")  # fmt: skip
    return "P<KORHONG<<GILDONG".ljust(44, "<") + "\n" + line2


def test_passport_mrz_lines_found_and_masked() -> None:
    """Was missed: the machine-readable zone is how passport copies leak."""
    text = "여권 사본\n" + mrz()
    found = detect(text)
    assert [f.type for f in found] == ["passport_mrz", "passport_mrz"]
    assert "HONG" not in found[0].masked
    assert "12345678" not in found[1].masked
    assert found[0].masked.startswith("P<")
    assert len(found[1].masked) == 44


def test_mrz_with_failing_check_digits_refused() -> None:
    line2 = mrz().splitlines()[1]
    broken = line2[:9] + str((int(line2[9]) + 1) % 10) + line2[10:19] + "0" + line2[20:]
    assert not mrz_check_ok("M12345678", broken[9])
    assert kinds(broken) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("건강보험증번호 12345678901", "12345678901"), ("보험증번호: 51234567890", "51234567890")],
)
def test_health_insurance_numbers_with_their_label(text: str, value: str) -> None:
    assert kinds(text) == [("health_insurance", value)]


def test_health_insurance_shape_alone_is_nothing() -> None:
    assert kinds("참조 12345678901") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ID: hong / PW: Abcd1234!", "Abcd1234!"),
        ("아이디 kim01 비밀번호: qwer1234", "qwer1234"),
        ("Password=S3cr3t!x;", "S3cr3t!x"),
        ("DB: postgres://app:s3cr3t@db.internal:5432/sales", "s3cr3t"),
        ("key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_" + "a1" * 18, "ghp_" + "a1" * 18),
    ],
)
def test_secrets_found_and_masked(text: str, value: str) -> None:
    (finding,) = detect(text)
    assert (finding.type, finding.text) == ("secret", value)
    assert set(finding.masked) == {"*"}


def test_private_keys_found_whole() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAB\n-----END RSA PRIVATE KEY-----"
    (finding,) = detect(f"키 파일 내용:\n{key}\n감사합니다")
    assert (finding.type, finding.text) == ("secret", key)
    assert "MIIEow" not in finding.masked
    assert finding.masked.count("\n") == 3


@pytest.mark.parametrize(
    "text",
    ["password: ********", "비밀번호: (별도 전달)", "비밀번호 변경 안내", "비밀번호: 1234",
     "https://www.example.com/path", "PW는 나중에 전화로"],
)  # fmt: skip
def test_secret_lookalikes_refused(text: str) -> None:
    assert kinds(text) == []


def test_every_kind_has_a_masking_form_and_a_name() -> None:
    from inner_agent.console.text import words
    from inner_agent.outbound.notice_mail import TYPE_NAMES

    assert set(TYPE_NAMES) == set(PII_TYPES)
    english = words("en")
    assert all(f"finding.{kind}" in english for kind in PII_TYPES)


# ---- (b) rules: a few contacts are business mail, a list is a customer list ------------------


def contact_list(count: int) -> str:
    return "\n".join(f"고객{i} 010-{1000 + i:04d}-{5000 + i:04d} c{i}@mail.example"
                     for i in range(count))  # fmt: skip


def test_a_few_contacts_are_business_mail() -> None:
    signature = "김철수 과장 | 010-1234-5678 | kim@corp.example\n" * 12  # quoted in every reply
    result = scan_message(make_mail(text=signature), default_rules(), SENDER)
    assert result.decision.action == "allow"
    assert result.counts()["phone"] == 12


def test_a_list_of_contacts_is_held_as_a_customer_list() -> None:
    result = scan_message(make_mail(text=contact_list(10)), default_rules(), SENDER)
    assert result.decision.action == "approve"
    assert result.decision.rule == "contact-list"
    assert "20 different" in result.decision.explanation


@pytest.mark.parametrize("kind_text", ["PW: Abcd1234!", mrz(), "건강보험증번호 12345678901"])
def test_one_identifier_of_a_new_kind_goes_for_approval(kind_text: str) -> None:
    result = scan_message(make_mail(text=kind_text), default_rules(), SENDER)
    assert result.decision.action == "approve"
    assert result.decision.rule == "personal-data"


# ---- (d) masked means masked ---------------------------------------------------------------


def test_the_approval_preview_masks_names_with_phone_numbers() -> None:
    """Was shown in clear: a brochure's customer list ending in "등"."""
    from inner_agent.outbound.preview import masked_view

    body = "참석 고객: 홍길동 010-1234-5678, 김영희 010-2345-6789 등\n문의 lee@corp.example"
    parsed = parse_message(make_mail(text=body))
    view = masked_view(parsed, extract_locations(parsed))
    shown = "\n".join(text for _, text in view.sections)
    for clear in ("1234-5678", "2345-6789", "lee@corp.example"):
        assert clear not in shown
    assert "010-****-****" in shown


def test_audit_records_and_console_trails_mask_every_kind() -> None:
    from agentkit.mailindex.shapes import _masked
    from inner_agent.outbound.scanning import masked_subject

    clear = "고객 홍길동 010-1234-5678 hong@example.com PW: Abcd1234!"
    subject = masked_subject(f"Subject: {clear}\r\n\r\nbody".encode())
    trail = _masked("subject", clear)
    for shown in (subject, trail):
        for value in ("1234-5678", "hong@example.com", "Abcd1234!"):
            assert value not in shown
        assert "010-****-****" in shown


def test_scan_json_names_the_new_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(text="담당 010-1234-5678 lee@partner.example\nPW: Abcd1234!"))
    assert main(["scan", str(mail), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(f["type"], f["masked"]) for f in report["findings"]] == [
        ("phone", "010-****-****"), ("email", "l**@partner.example"), ("secret", "*********"),
    ]  # fmt: skip
    assert report["decision"] == "approve"  # the secret; one phone and one address alone pass
