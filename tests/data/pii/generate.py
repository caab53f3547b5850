"""Generate the labelled personal-data set: ``labelled.jsonl`` beside this file.

    .venv/bin/python tests/data/pii/generate.py   # rewrites both sets (seeds fixed)

``labelled.jsonl`` holds issue 5's six kinds (tests/mailsafe/test_pii_labelled.py holds the
detector to it); ``labelled_kinds.jsonl`` holds every kind of issue 19 (phone numbers,
e-mail addresses, health-insurance numbers, passport MRZ lines and secrets too) with more
look-alikes: business numbers under their label, corporate registration numbers, masked
numbers, numbers whose label names a kind their shape is not. tests/support/pii_eval.py
scores the detector on it inside every container the scanner reads.

Half the examples carry one or more pieces of personal data, labelled with type and span; the
other half are look-alikes that must not be reported: phone numbers, dates, order and invoice
numbers, business and corporate registration numbers, Luhn-failing card-like numbers,
impossible dates and gender digits, wrong region codes, product codes, amounts.

This script knows nothing of mailsafe: the arithmetic (check digits, Luhn) is written out
again here, so a bug in the detector cannot make its own test pass. Unseparated 13-digit
registration numbers, 12-digit licence numbers and bank accounts always come with a context
word here, as they do in real mail ("계좌번호: ..."): without one such a number is
indistinguishable from an order number, and the detector is built to not guess.
"""

from __future__ import annotations

import datetime
import json
import random
from collections.abc import Callable
from pathlib import Path

SEED = 20261123
PER_TYPE_POSITIVES = 50
LOOKALIKES = 300
OUT = Path(__file__).with_name("labelled.jsonl")

Label = dict[str, object]
Example = tuple[str, list[tuple[str, str]]]  # template pieces resolved later


def luhn_digit(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    return luhn_digit(digits[:-1]) == digits[-1]


def rrn_check(twelve: str) -> str:
    """Check digit: (11 - sum % 11) % 10 for residents, (13 - ...) for foreigners."""
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    total = sum(int(d) * w for d, w in zip(twelve, weights, strict=True))
    base = 13 if twelve[6] in "5678" else 11
    return str((base - total % 11) % 10)


FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def styled(rng: random.Random, groups: list[str], styles: list[str]) -> str:
    style = rng.choice(styles)
    if style == "hyphen":
        return "-".join(groups)
    if style == "space":
        return " ".join(groups)
    if style == "endash":
        return "–".join(groups)
    if style == "fullwidth":
        return "-".join(groups).translate(FULLWIDTH)
    if style == "fwhyphen":
        return "－".join(groups)
    if style == "spaced-hyphen":
        return " - ".join(groups)
    return "".join(groups)


def birth(rng: random.Random, century: int) -> datetime.date:
    low = datetime.date(1935, 1, 1) if century == 1900 else datetime.date(2000, 1, 1)
    high = datetime.date(1999, 12, 31) if century == 1900 else datetime.date(2019, 12, 31)
    return low + datetime.timedelta(days=rng.randrange((high - low).days))


def registration(rng: random.Random, foreigner: bool) -> tuple[str, str]:
    century = rng.choice((1900, 2000))
    digits = ("5678" if foreigner else "1234")[(0 if century == 1900 else 2) + rng.randrange(2)]
    date = birth(rng, century)
    twelve = date.strftime("%y%m%d") + digits + f"{rng.randrange(100000):05d}"
    # Half carry a valid check digit; numbers issued from October 2020 carry none.
    last = rrn_check(twelve) if rng.random() < 0.5 else str(rng.randrange(10))
    return twelve[:6], twelve[6:] + last


RRN_CONTEXT = [
    "주민등록번호: {v}",
    "주민번호 {v} 확인 부탁드립니다.",
    "신청인 홍길동 (주민등록번호 {v})",
    "Resident registration number: {v}",
    "RRN {v} attached for payroll.",
    "성명: 김철수, 주민번호: {v}, 주소: 서울시 강남구",
    "아래 직원의 주민등록번호는 {v} 입니다.",
]
RRN_BARE_OK = [  # shapes strong enough to stand without a context word
    "김영희 {v} 서울시 마포구",
    "명단: 이민수, {v}, 영업팀",
    "{v}",
    "본인 확인용 번호 {v} 입니다",
]
FRN_CONTEXT = [
    "외국인등록번호: {v}",
    "Alien registration number {v}",
    "외국인등록번호 {v} (E-9 비자)",
    "Foreigner registration no. {v}",
    "외국인 근로자 John Smith, 외국인번호 {v}",
]
DL_CONTEXT = [
    "운전면허번호: {v}",
    "면허번호 {v} 확인",
    "Driver's license: {v}",
    "운전면허증 사본 ({v}) 첨부합니다.",
    "Driving licence no. {v}",
]
DL_BARE_OK = ["배송기사 박지훈 {v} 차량 12가3456", "{v}", "기사 정보: {v}"]
PASSPORT_CONTEXT = [
    "여권번호: {v}",
    "Passport No. {v}",
    "여권 {v} / 만료일 2030-05-01",
    "출장자 여권번호 {v} 입니다.",
    "passport number {v}, expiry 2031-01-01",
]
PASSPORT_BARE_OK = ["홍길동 {v} 2030-05-01 만료", "{v}", "명단: 최수진, {v}, 개발팀"]
CARD_CONTEXT = [
    "카드번호: {v}",
    "법인카드 {v} 로 결제했습니다.",
    "Credit card number: {v}",
    "결제 카드 {v} 유효기간 12/27",
    "Card no {v} exp 09/28",
]
CARD_BARE_OK = ["홍길동 {v} 12/27", "{v}", "결제 정보 변경: {v} 로 부탁드립니다"]
BANK_CONTEXT = [
    "입금 계좌: {bank} {v}",
    "{bank} {v} (예금주 홍길동)",
    "환불 계좌번호 {v} {bank}",
    "Please wire to {bank_en} account {v}.",
    "계좌번호: {v} ({bank})",
    "급여 이체 계좌 {bank} {v}",
    "Bank account: {v}",
]
BANKS = [
    ("KB국민은행", "KB Kookmin Bank", [(6, 2, 6), (3, 2, 4, 3)]),
    ("신한은행", "Shinhan Bank", [(3, 3, 6), (3, 2, 6)]),
    ("우리은행", "Woori Bank", [(4, 3, 6)]),
    ("하나은행", "Hana Bank", [(3, 6, 5)]),
    ("NH농협", "NH Bank", [(3, 4, 4, 2), (6, 2, 6)]),
    ("IBK기업은행", "IBK", [(3, 6, 2, 3)]),
    ("카카오뱅크", "KakaoBank", [(4, 2, 7)]),
    ("토스뱅크", "Toss Bank", [(4, 4, 4)]),
    ("SC제일은행", "SC Bank Korea", [(3, 2, 6)]),
    ("케이뱅크", "K bank", [(3, 3, 6)]),
    ("우체국", "Korea Post bank", [(6, 2, 6)]),
]
REGIONS = [
    "서울", "부산", "경기", "강원", "충북", "충남", "전북", "전남", "경북", "경남", "제주",
    "대구", "인천", "광주", "대전", "울산",
]  # fmt: skip
SEPARATED = ["hyphen", "hyphen", "hyphen", "endash", "fullwidth", "fwhyphen", "spaced-hyphen"]


def digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def positive_registration(rng: random.Random, foreigner: bool) -> tuple[str, str]:
    front, back = registration(rng, foreigner)
    kind = "foreigner_id" if foreigner else "rrn"
    contexts = FRN_CONTEXT if foreigner else RRN_CONTEXT
    style = rng.choice([*SEPARATED, "space", "none"])
    value = styled(rng, [front, back], [style])
    if style in ("none", "space"):
        template = rng.choice(contexts)
    else:
        template = rng.choice(contexts + (RRN_BARE_OK if not foreigner else []))
    return kind, template.replace("{v}", "\0" + value + "\0")


def positive_license(rng: random.Random) -> tuple[str, str]:
    year, serial, check = digits(rng, 2), digits(rng, 6), digits(rng, 2)
    if rng.random() < 0.4:
        sep = rng.choice(["-", "-", " ", "－"])
        value = f"{rng.choice(REGIONS)} {year}{sep}{serial}{sep}{check}"
        if rng.random() < 0.3:
            value = value.replace(" ", "", 1)
        template = rng.choice(DL_CONTEXT + DL_BARE_OK)
    else:
        region = str(rng.choice([*range(11, 27), 28]))
        style = rng.choice([*SEPARATED, "space", "none"])
        value = styled(rng, [region, year, serial, check], [style])
        template = rng.choice(DL_CONTEXT if style in ("none", "space") else DL_CONTEXT + DL_BARE_OK)
    return "driver_license", template.replace("{v}", "\0" + value + "\0")


def positive_passport(rng: random.Random) -> tuple[str, str]:
    letter = rng.choice("MMMMSRODG")
    if rng.random() < 0.5:
        value = letter + digits(rng, 8)
    else:
        value = letter + digits(rng, 3) + rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + digits(rng, 4)
    if rng.random() < 0.15:
        value = value.translate(
            str.maketrans("0123456789MSRODGABC", "０１２３４５６７８９ＭＳＲＯＤＧＡＢＣ")
        )
    return "passport", rng.choice(PASSPORT_CONTEXT + PASSPORT_BARE_OK).replace(
        "{v}", "\0" + value + "\0"
    )


def card_number(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("35", 16),
         ("9410", 16), ("62", 16), ("6011", 16), ("36", 14), ("4", 13)]
    )  # fmt: skip
    partial = prefix + digits(rng, length - len(prefix) - 1)
    return partial + luhn_digit(partial)


def group_card(number: str) -> list[str]:
    if len(number) == 15:
        return [number[:4], number[4:10], number[10:]]
    if len(number) == 14:
        return [number[:4], number[4:10], number[10:]]
    if len(number) == 13:
        return [number]
    return [number[i : i + 4] for i in range(0, len(number), 4)]


def positive_card(rng: random.Random) -> tuple[str, str]:
    number = card_number(rng)
    value = styled(rng, group_card(number), [*SEPARATED, "space", "space", "none"])
    template = rng.choice(CARD_CONTEXT + CARD_BARE_OK)
    return "credit_card", template.replace("{v}", "\0" + value + "\0")


def positive_bank(rng: random.Random) -> tuple[str, str]:
    bank, bank_en, layouts = rng.choice(BANKS)
    layout = rng.choice(layouts)
    groups = [digits(rng, n) for n in layout]
    groups[0] = str(rng.randrange(1, 10)) + groups[0][1:]
    value = styled(rng, groups, ["hyphen"] * 6 + ["none", "fullwidth", "space"])
    template = rng.choice(BANK_CONTEXT)
    text = template.replace("{bank}", bank).replace("{bank_en}", bank_en)
    return "bank_account", text.replace("{v}", "\0" + value + "\0")


def with_labels(kind: str, marked: str) -> tuple[str, list[Label]]:
    before, value, after = marked.split("\0")
    return before + value + after, [
        {"type": kind, "start": len(before), "end": len(before) + len(value)}
    ]


POSITIVES: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "rrn": lambda rng: positive_registration(rng, foreigner=False),
    "foreigner_id": lambda rng: positive_registration(rng, foreigner=True),
    "driver_license": positive_license,
    "passport": positive_passport,
    "credit_card": positive_card,
    "bank_account": positive_bank,
}


# ---- look-alikes -------------------------------------------------------------------------


def phone(rng: random.Random) -> str:
    forms = [
        f"010-{digits(rng, 4)}-{digits(rng, 4)}",
        f"02-{digits(rng, 3)}-{digits(rng, 4)}",
        f"031-{digits(rng, 3)}-{digits(rng, 4)}",
        f"+82-10-{digits(rng, 4)}-{digits(rng, 4)}",
        f"1588-{digits(rng, 4)}",
        f"010{digits(rng, 8)}",
        f"(02) {digits(rng, 4)}-{digits(rng, 4)}",
        f"070-{digits(rng, 4)}-{digits(rng, 4)}",
    ]
    template = rng.choice(
        [
            "연락처: {v}",
            "휴대폰 {v} 로 연락 주세요.",
            "Tel. {v}",
            "입금 확인은 {v} 로 문자 부탁드립니다.",
            "계좌 관련 문의: {v}",
            "담당자 김민지 {v}",
            "{v}",
            "Call me at {v} after 3pm.",
        ]
    )
    return template.replace("{v}", rng.choice(forms))


def date_like(rng: random.Random) -> str:
    d = datetime.date(2000, 1, 1) + datetime.timedelta(days=rng.randrange(12000))
    forms = [
        d.isoformat(),
        d.strftime("%Y.%m.%d"),
        d.strftime("%Y%m%d"),
        f"{d.year}년 {d.month}월 {d.day}일",
        d.strftime("%d/%m/%Y"),
        d.strftime("%Y-%m-%d %H:%M:00").replace(
            "00:00", f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        ),
        d.strftime("%Y%m%d") + digits(rng, 6),
        d.strftime("%y%m%d") + "-" + digits(rng, 4),
        d.strftime("%Y-%m-%d") + " ~ " + (d + datetime.timedelta(days=3)).strftime("%Y-%m-%d"),
    ]
    template = rng.choice(
        ["회의 일시: {v}", "Due date {v}", "작성일 {v}", "{v} 기준", "생산일자 {v}"]
    )
    return template.replace("{v}", rng.choice(forms))


def order_number(rng: random.Random) -> str:
    forms = [
        f"ORD-{digits(rng, 8)}-{digits(rng, 6)}",
        digits(rng, 13),
        digits(rng, 16),
        f"A{digits(rng, 9)}",
        f"{digits(rng, 6)}-{digits(rng, 7)}",
        f"{digits(rng, 4)}-{digits(rng, 4)}-{digits(rng, 4)}-{digits(rng, 4)}",
        f"20{digits(rng, 12)}",
    ]
    template = rng.choice(
        [
            "주문번호: {v}",
            "Order #{v} has shipped.",
            "주문 {v} 배송 준비중",
            "예약번호 {v}",
            "Order number {v}",
        ]
    )
    return template.replace("{v}", rng.choice(forms))


def invoice_number(rng: random.Random) -> str:
    forms = [
        f"INV-{rng.randrange(2019, 2027)}-{digits(rng, 6)}",
        f"{digits(rng, 4)}-{digits(rng, 4)}-{digits(rng, 4)}",
        digits(rng, 12),
        f"{digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 6)}",
        f"{digits(rng, 6)}-{digits(rng, 2)}-{digits(rng, 6)}",
    ]
    template = rng.choice(
        [
            "송장번호 {v}",
            "운송장 번호: {v}",
            "Invoice No. {v}",
            "Tracking number {v}",
            "택배 {v} 조회",
        ]
    )
    return template.replace("{v}", rng.choice(forms))


def brn(rng: random.Random) -> str:
    first9 = digits(rng, 9)
    weights = (1, 3, 7, 1, 3, 7, 1, 3, 5)
    total = sum(int(d) * w for d, w in zip(first9, weights, strict=True))
    total += int(first9[8]) * 5 // 10
    number = first9 + str((10 - total % 10) % 10)
    value = f"{number[:3]}-{number[3:5]}-{number[5:]}"
    # Corporate registration numbers share the resident number's 6-7 layout.
    corp = f"{rng.choice(['110111', '134511', '110171', '160111'])}-{digits(rng, 7)}"
    template = rng.choice(
        [
            "사업자등록번호: {v}",
            "Business registration no. {v}",
            "(주)가나다 사업자 {v}",
            "법인등록번호 {c}",
            "법인등록번호: {c}, 사업자등록번호: {v}",
        ]
    )
    return template.replace("{v}", value).replace("{c}", corp)


def bad_card(rng: random.Random) -> str:
    while True:
        number = card_number(rng)
        number = number[:-1] + str((int(number[-1]) + rng.randrange(1, 10)) % 10)
        if not luhn_ok(number):
            break
    value = styled(rng, group_card(number), ["hyphen", "space", "none"])
    template = rng.choice(["카드번호: {v}", "Card number {v}", "{v}", "결제 카드 {v}"])
    return template.replace("{v}", value)


def impossible_date(rng: random.Random) -> str:
    yy = f"{rng.randrange(100):02d}"
    gender = str(rng.randrange(1, 9))
    birth_part = rng.choice(
        [
            f"{yy}13{rng.randrange(1, 29):02d}",
            f"{yy}00{rng.randrange(1, 29):02d}",
            f"{yy}{rng.randrange(1, 13):02d}32",
            f"{yy}0230",
            f"{yy}0431",
            f"{yy}{rng.randrange(1, 13):02d}00",
        ]
    )
    if rng.random() < 0.3:  # a real date with a gender/century digit that does not exist
        birth_part = f"{yy}0115"
        gender = rng.choice("90")
    if rng.random() < 0.2 and gender in "12":  # 29 February of a non-leap year
        birth_part, gender = "010229", "3"
    value = f"{birth_part}-{gender}{digits(rng, 6)}"
    template = rng.choice(
        ["주민등록번호: {v}", "주민번호 {v}", "{v}", "외국인등록번호 {v}", "RRN {v}"]
    )
    return template.replace("{v}", value)


def bad_license(rng: random.Random) -> str:
    region = rng.choice([f"{rng.randrange(0, 11):02d}", str(rng.randrange(29, 100))])
    value = f"{region}-{digits(rng, 2)}-{digits(rng, 6)}-{digits(rng, 2)}"
    return rng.choice(["면허번호 {v}", "{v}", "관리번호 {v}"]).replace("{v}", value)


def product_code(rng: random.Random) -> str:
    forms = [
        f"M{digits(rng, 7)}",
        f"M{digits(rng, 9)}",
        f"MX{digits(rng, 8)}",
        f"SM-G{digits(rng, 3)}N",
        f"A{digits(rng, 8)}",
        f"M{digits(rng, 8)}-K",
        f"K{digits(rng, 3)}A{digits(rng, 4)}",
        f"모델명 M{digits(rng, 8)}",
        f"제품 시리얼 S{digits(rng, 8)}",
    ]
    template = rng.choice(["모델: {v}", "Part no {v}", "{v}", "품번 {v} 재고 있음", "Model {v}"])
    return template.replace("{v}", rng.choice(forms))


def other_number(rng: random.Random) -> str:
    forms = [
        f"금액 {rng.randrange(1, 999)},{digits(rng, 3)},{digits(rng, 3)}원",
        f"192.168.{rng.randrange(256)}.{rng.randrange(256)}",
        f"ISBN 978-89-{digits(rng, 4)}-{digits(rng, 3)}-{digits(rng, 1)}",
        f"우편번호 {digits(rng, 5)}",
        f"계좌 잔액 {rng.randrange(1, 99)},{digits(rng, 3)},{digits(rng, 3)}원",
        f"회원번호 {digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 6)}",
        f"문서번호 {digits(rng, 4)}-{digits(rng, 2)}-{digits(rng, 7)}",
        f"버전 {rng.randrange(10)}.{rng.randrange(20)}.{rng.randrange(100)}",
        f"접수번호 {digits(rng, 14)}",
        f"차량번호 {digits(rng, 2)}가 {digits(rng, 4)}",
    ]
    return rng.choice(forms)


LOOKALIKE_KINDS: dict[str, Callable[[random.Random], str]] = {
    "phone": phone,
    "date": date_like,
    "order_number": order_number,
    "invoice_number": invoice_number,
    "business_registration": brn,
    "luhn_failing_card": bad_card,
    "impossible_date": impossible_date,
    "bad_region_license": bad_license,
    "product_code": product_code,
    "other_number": other_number,
}


def generate(seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    examples: list[dict[str, object]] = []
    for kind, make in POSITIVES.items():
        for _ in range(PER_TYPE_POSITIVES):
            text, labels = with_labels(*make(rng))
            if rng.random() < 0.2:  # a second, different finding in the same text
                other_kind = rng.choice([k for k in POSITIVES if k != kind])
                extra, extra_labels = with_labels(*POSITIVES[other_kind](rng))
                offset = len(text) + 3
                text = f"{text} / {extra}"
                labels += [{**lab, "start": int(str(lab["start"])) + offset,
                            "end": int(str(lab["end"])) + offset} for lab in extra_labels]  # fmt: skip
            examples.append({"kind": "positive", "category": kind, "text": text, "labels": labels})
    names = list(LOOKALIKE_KINDS)
    for index in range(LOOKALIKES):
        category = names[index % len(names)]
        text = LOOKALIKE_KINDS[category](rng)
        examples.append({"kind": "lookalike", "category": category, "text": text, "labels": []})
    for number, example in enumerate(examples, 1):
        example["id"] = number
    return examples


# ---- the second generation's kinds (issue 19): every kind the detector reports -------------

SEED_ALL = 20261205
PER_KIND_POSITIVES_ALL = 200
LOOKALIKES_ALL = 2200
OUT_ALL = Path(__file__).with_name("labelled_kinds.jsonl")

PHONE_CONTEXT = [
    "연락처: {v}", "휴대폰 {v} 로 연락 주세요.", "Tel. {v}", "담당자 김민지 {v}", "{v}",
    "Call me at {v} after 3pm.", "H.P {v}", "고객 이정훈 님 휴대전화 {v}", "팩스 {v}",
    "비상연락망: 박서연 {v}",
]  # fmt: skip


def positive_phone(rng: random.Random) -> tuple[str, str]:
    middle = rng.choice([3, 4])
    forms = [
        f"010-{digits(rng, 4)}-{digits(rng, 4)}",
        f"010 {digits(rng, 4)} {digits(rng, 4)}",
        f"010.{digits(rng, 4)}.{digits(rng, 4)}",
        f"02-{digits(rng, middle)}-{digits(rng, 4)}",
        f"0{rng.choice([31, 32, 51, 53, 62, 64])}-{digits(rng, middle)}-{digits(rng, 4)}",
        f"070-{digits(rng, 4)}-{digits(rng, 4)}",
        f"(02) {digits(rng, 4)}-{digits(rng, 4)}",
    ]
    value = rng.choice(forms)
    template = rng.choice(PHONE_CONTEXT)
    if rng.random() < 0.15:  # 11 digits, the health-insurance number's shape, labelled a phone
        value, template = "010" + digits(rng, 8), rng.choice(["연락처 {v}", "휴대폰: {v}"])
    return "phone", template.replace("{v}", "\0" + value + "\0")


GIVEN = ["minji", "jihoon", "seoyeon", "hyunwoo", "john.smith", "s.park", "kim_dh", "lee.sj"]
DOMAINS = ["corp.example", "gmail.com", "naver.com", "daum.net", "samsung.co.kr", "korea.kr"]


def positive_email(rng: random.Random) -> tuple[str, str]:
    local = rng.choice(GIVEN) + (str(rng.randrange(100)) if rng.random() < 0.4 else "")
    value = f"{local}@{rng.choice(DOMAINS)}"
    template = rng.choice(
        ["메일: {v}", "E-mail {v}", "회신은 {v} 로 부탁드립니다.", "{v}", "담당 이서준 ({v})"]
    )
    return "email", template.replace("{v}", "\0" + value + "\0")


def positive_health_insurance(rng: random.Random) -> tuple[str, str]:
    """Eleven digits after their label: the detector never reports them bare (an 11-digit
    number without a label is as likely a customer number)."""
    value = str(rng.randrange(1, 10)) + digits(rng, 10)
    template = rng.choice(
        [
            "건강보험증번호: {v}", "건강보험증 번호 {v}", "NHIS no. {v}",
            "피부양자 등록 - 건강보험번호 {v}", "보험증번호 {v} (직장가입자)",
        ]
    )  # fmt: skip
    return "health_insurance", template.replace("{v}", "\0" + value + "\0")


def mrz_check(field: str) -> str:
    def value(char: str) -> int:
        if char.isdigit():
            return int(char)
        return 0 if char == "<" else ord(char) - ord("A") + 10

    return str(sum(value(c) * (7, 3, 1)[i % 3] for i, c in enumerate(field)) % 10)


SURNAMES = ["HONG", "KIM", "LEE", "PARK", "CHOI", "JEONG"]
GIVEN_NAMES = ["GILDONG", "MINJI", "JIHOON", "SEO<YEON", "HYUN<WOO"]


def positive_mrz(rng: random.Random) -> tuple[str, str]:
    """Both lines of a Korean passport's machine-readable zone (ICAO 9303 TD3), each a label."""
    name = f"P<KOR{rng.choice(SURNAMES)}<<{rng.choice(GIVEN_NAMES)}".ljust(44, "<")
    number = rng.choice("MS") + digits(rng, 8)
    born = birth(rng, 1900).strftime("%y%m%d")
    expiry = f"{rng.randrange(27, 36)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    personal = (rng.choice("12") + digits(rng, 6)).ljust(14, "<")
    second = (
        number + mrz_check(number) + "KOR" + born + mrz_check(born) + rng.choice("MF")
        + expiry + mrz_check(expiry) + personal + mrz_check(personal)
    )  # fmt: skip
    second += mrz_check(second[0:10] + second[13:20] + second[21:43])
    intro = rng.choice(["여권 사본 판독 결과:\n", "MRZ\n", "", "Passport scan:\n"])
    return "passport_mrz", f"{intro}\0{name}\0\n\0{second}\0"


def _token(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def positive_secret(rng: random.Random) -> tuple[str, str]:
    upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    password = _token(rng, ALNUM, rng.randrange(6, 10)) + rng.choice("!#$%") + digits(rng, 2)
    choice = rng.randrange(7)
    if choice == 0:
        return "secret", f"aws_access_key_id = \0AKIA{_token(rng, upper, 16)}\0"
    if choice == 1:
        return "secret", f"토큰 \0ghp_{_token(rng, ALNUM, 36)}\0 로 접속하세요"
    if choice == 2:
        return "secret", f"SLACK_TOKEN=\0xoxb-{digits(rng, 12)}-{_token(rng, ALNUM, 24)}\0"
    if choice == 3:
        return "secret", f"OPENAI_API_KEY: \0sk-proj-{_token(rng, ALNUM, 40)}\0"
    if choice == 4:
        host = rng.choice(["db.corp.example", "10.0.3.12", "pg-prod.internal"])
        return "secret", f"DB 접속: postgres://app_user:\0{password}\0@{host}:5432/erp"
    if choice == 5:
        login = rng.choice(["ID: kim.minji", "아이디: admin", "계정 hr_manager"])
        label = rng.choice(["PW: ", "비밀번호: ", "password = ", "패스워드 : "])
        return "secret", f"{login} / {label}\0{password}\0"
    key = "\n".join(_token(rng, ALNUM + "+/", 64) for _ in range(3))
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{key}\n-----END RSA PRIVATE KEY-----"
    return "secret", f"서버 키 첨부합니다:\n\0{pem}\0"


POSITIVES_ALL: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    **POSITIVES,
    "health_insurance": positive_health_insurance,
    "passport_mrz": positive_mrz,
    "phone": positive_phone,
    "email": positive_email,
    "secret": positive_secret,
}


def with_all_labels(kind: str, marked: str) -> tuple[str, list[Label]]:
    """``with_labels`` for texts marking one value or more (an MRZ marks both lines)."""
    pieces = marked.split("\0")
    text, labels = "", []
    for index, piece in enumerate(pieces):
        if index % 2:
            labels.append({"type": kind, "start": len(text), "end": len(text) + len(piece)})
        text += piece
    return text, labels


def business_number(rng: random.Random) -> str:
    """Numbers of orders, contracts, customers, staff and products under their own label."""
    label, value = rng.choice(
        [
            ("계약번호", f"{digits(rng, 6)}-{digits(rng, 7)}"),
            ("계약번호", f"C-{rng.randrange(2019, 2027)}-{digits(rng, 5)}"),
            ("고객번호", digits(rng, 11)),
            ("고객번호", f"{digits(rng, 3)}-{digits(rng, 2)}-{digits(rng, 6)}"),
            ("사번", digits(rng, 8)),
            ("사원번호", f"{rng.randrange(2000, 2027)}{digits(rng, 4)}"),
            ("직원번호", f"E{digits(rng, 7)}"),
            ("제품번호", digits(rng, 13)),
            ("제품번호", f"{digits(rng, 4)}-{digits(rng, 4)}-{digits(rng, 4)}-{digits(rng, 4)}"),
            ("Customer ID", digits(rng, 12)),
            ("Employee ID", f"{digits(rng, 6)}-{digits(rng, 7)}"),
            ("발주번호", f"PO-{digits(rng, 10)}"),
            ("견적번호", digits(rng, 14)),
            ("증권번호", f"{digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 6)}"),
            ("법인등록번호", f"{rng.choice(['110111', '134511', '284411'])}-{digits(rng, 7)}"),
        ]
    )
    template = rng.choice(["{l}: {v}", "{l} {v} 건 확인 부탁드립니다.", "({l} {v})"])
    return template.replace("{l}", label).replace("{v}", value)


def masked_number(rng: random.Random) -> str:
    """Numbers already masked: nothing left to find."""
    forms = [
        f"{digits(rng, 6)}-{rng.randrange(1, 5)}******",
        f"{digits(rng, 6)}-*******",
        f"{digits(rng, 4)}-****-****-{digits(rng, 4)}",
        f"{digits(rng, 4)}-{digits(rng, 2)}**-****-{digits(rng, 4)}",
        f"010-****-{digits(rng, 4)}",
        f"***-**-{digits(rng, 6)}",
        f"M{digits(rng, 4)}****",
        f"{digits(rng, 3)}-{digits(rng, 3)}-******",
        f"{rng.choice('kmpj')}***@{rng.choice(DOMAINS)}",
        "PW: ********",
    ]
    template = rng.choice(["주민번호 {v}", "카드 {v}", "계좌 {v}", "{v}", "연락처 {v}"])
    value = rng.choice(forms)
    return template.replace("{v}", value) if "@" not in value else f"메일 {value}"


def other_kinds_label(rng: random.Random) -> str:
    """A number under a label naming a kind its shape is not: no account, no card."""
    forms = [
        f"카드번호 {digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 6)}",
        f"카드번호: {rng.randrange(100, 999)}-{digits(rng, 2)}-{digits(rng, 6)}",
        f"여권번호 {digits(rng, 3)}-{digits(rng, 2)}-{digits(rng, 5)}",
        f"면허번호 {digits(rng, 4)}-{digits(rng, 4)}",
        f"건강보험증번호 {digits(rng, 4)}-{digits(rng, 4)}",
    ]
    return rng.choice(forms)


def not_an_address(rng: random.Random) -> str:
    forms = [
        f"Content-ID: <image00{rng.randrange(10)}.png@01D9{_token(rng, '0123456789ABCDEF', 4)}"
        f".{_token(rng, '0123456789ABCDEF', 8)}>",
        f"@{rng.choice(['minji', 'team', 'all'])} 회의 자료 확인 부탁드립니다.",
        f"git@{rng.randrange(10)}.{rng.randrange(10)}",
        "price @ 1,200원 x 30개",
    ]
    return rng.choice(forms)


def not_a_secret(rng: random.Random) -> str:
    forms = [
        "비밀번호는 별도로 전달드리겠습니다.",
        "Password reset link was sent to your account.",
        f"PW 변경 주기: {rng.randrange(30, 180)}일",
        "비밀번호: ********",
        f"토큰 만료일 {rng.randrange(2025, 2028)}-0{rng.randrange(1, 10)}-15",
        "sk-telecom 협력사 미팅 일정",
        f"AKIA 로 시작하는 키는 폐기되었습니다 (ticket #{digits(rng, 5)})",
    ]
    return rng.choice(forms)


def not_mrz(rng: random.Random) -> str:
    return rng.choice(
        [
            "<<<<<<<<<<<<<<<<<<<< 구분선 >>>>>>>>>>>>>>>>>>>>",
            f"std::vector<std::map<int, int>> table{rng.randrange(9)};",
            f"ABC<<DEF<<<{digits(rng, 10)}<<<<",
        ]
    )


LOOKALIKE_KINDS_ALL: dict[str, Callable[[random.Random], str]] = {
    **{name: make for name, make in LOOKALIKE_KINDS.items() if name != "phone"},
    "business_number": business_number,
    "masked_number": masked_number,
    "label_names_other_kind": other_kinds_label,
    "not_an_address": not_an_address,
    "not_a_secret": not_a_secret,
    "not_mrz": not_mrz,
}


def generate_all(seed: int = SEED_ALL) -> list[dict[str, object]]:
    """Every kind the detector reports, ``PER_KIND_POSITIVES_ALL`` texts each (a fifth with a
    second kind), and ``LOOKALIKES_ALL`` look-alikes (phone numbers are a kind here)."""
    rng = random.Random(seed)
    examples: list[dict[str, object]] = []
    for kind, make in POSITIVES_ALL.items():
        for _ in range(PER_KIND_POSITIVES_ALL):
            text, labels = with_all_labels(*make(rng))
            if rng.random() < 0.2:
                other_kind = rng.choice([k for k in POSITIVES_ALL if k != kind])
                extra, extra_labels = with_all_labels(*POSITIVES_ALL[other_kind](rng))
                offset = len(text) + 3
                text = f"{text} / {extra}"
                labels += [{**lab, "start": int(str(lab["start"])) + offset,
                            "end": int(str(lab["end"])) + offset} for lab in extra_labels]  # fmt: skip
            examples.append({"kind": "positive", "category": kind, "text": text, "labels": labels})
    names = list(LOOKALIKE_KINDS_ALL)
    for index in range(LOOKALIKES_ALL):
        category = names[index % len(names)]
        text = LOOKALIKE_KINDS_ALL[category](rng)
        examples.append({"kind": "lookalike", "category": category, "text": text, "labels": []})
    for number, example in enumerate(examples, 1):
        example["id"] = number
    return examples


def write(path: Path, examples: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(example, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {path} ({len(examples)} examples)")


def main() -> None:
    write(OUT, generate())
    write(OUT_ALL, generate_all())


if __name__ == "__main__":
    main()
