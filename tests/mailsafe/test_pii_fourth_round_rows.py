"""Issue 19, fourth round: a second held-out set, written by hand before the fourth round's
changes to the detector (docs/decisions.md, "Text detector, fourth round").

The 4,400-row labelled set is at recall 1.0000 and no false alarm outside OCR, so it tells us
nothing more: these rows are what it does not hold, written as an employee writes (KakaoTalk
pastes, HR and finance mails, customer lists copied from Excel with tabs, forms, replies with
quoted text, Korean and English mixed). Each lists every finding a person reading it would
point at, and nothing else: a missing one is a miss, an extra one a false alarm. Look-alikes
(order, invoice and tracking numbers, dates, business phone numbers, 법인등록번호, 사업자번호,
product codes) list nothing, or only the personal data beside them.

The numbers are made up. Resident and foreigner numbers carry a valid check digit unless
marked "post-2020" (issued since October 2020: any last digit) or "no check digit" (as
people type a number from memory). A number split into its two halves with words between is
one finding from the first half's first digit to the second half's last: that is what must
be masked (``870722 주민 뒷자리 1******``).
"""

from __future__ import annotations

import pytest

from mailsafe.pii import detect

Expected = tuple[tuple[str, str], ...]

# (row, what a person points at: (kind, value) in order of position)
PERSONAL_ROWS: list[tuple[str, Expected]] = [
    # ---- a resident number split into its halves, words between -------------------------
    ("[오후 2:14] 김민지 : 생년월일 870722 주민 뒷자리 1234567 이에요",  # no check digit
     (("rrn", "870722 주민 뒷자리 1234567"),)),
    ("앞자리 900101 / 뒷자리 2345678",  # no check digit
     (("rrn", "900101 / 뒷자리 2345678"),)),
    ("주민번호 앞 850315 뒤 2345129 입니다",
     (("rrn", "850315 뒤 2345129"),)),
    ("주민등록번호 앞자리는 921104이고 뒷자리는 1782341입니다.",
     (("rrn", "921104이고 뒷자리는 1782341"),)),
    ("주민번호(앞): 760830\n주민번호(뒤): 2918450",
     (("rrn", "760830\n주민번호(뒤): 2918450"),)),
    ("RRN first 6: 830917, last 7: 2688439",
     (("rrn", "830917, last 7: 2688439"),)),
    ("생년월일: 1969-04-12 / 주민번호 뒷자리: 1573015",
     (("rrn", "1969-04-12 / 주민번호 뒷자리: 1573015"),)),
    ("DOB 1990.01.01, 주민 뒷번호 2345670",
     (("rrn", "1990.01.01, 주민 뒷번호 2345670"),)),
    ("외국인등록번호 앞자리 950228 뒷자리 5123490",
     (("foreigner_id", "950228 뒷자리 5123490"),)),
    ("생년월일 880611 뒤 7자리 6234789",
     (("foreigner_id", "880611 뒤 7자리 6234789"),)),
    ("성명\t생년월일\t주민번호 뒷자리\t연락처\n김민수\t850315\t2345129\t010-1111-2222",
     (("rrn", "850315\t2345129"), ("phone", "010-1111-2222"))),
    # ---- a bare post-2020 number after a name, nothing else on the line ------------------
    ("[오전 10:02] 박서연 : 애기 이름 김하준 2103154823911 로 등록했어요",  # post-2020
     (("rrn", "2103154823911"),)),
    ("연말정산 부양가족: 자녀 이도윤 2206073145620",  # post-2020
     (("rrn", "2206073145620"),)),
    ("홍지우 2309144188200",  # post-2020
     (("rrn", "2309144188200"),)),
    ("김하은\t2401013749150\t영업2팀",  # post-2020, an Excel row without its header
     (("rrn", "2401013749150"),)),
    ("자녀 최서윤(2012253982710) 추가 부탁드립니다",  # post-2020
     (("rrn", "2012253982710"),)),
    # ---- a bank account whose bank name follows it ---------------------------------------
    ("110123456789 신한은행 12345",
     (("bank_account", "110123456789"),)),
    ("환불은 3333012345678 카카오뱅크 예금주 김민수 로 부탁드려요",
     (("bank_account", "3333012345678"),)),
    ("1002345678901 우리은행 (예금주 최유진)",
     (("bank_account", "1002345678901"),)),
    ("입금계좌 356-1234-5678-93 농협",
     (("bank_account", "356-1234-5678-93"),)),
    ("> 계좌번호 알려주세요\n네, 국민 123456-01-234567 입니다.",
     (("bank_account", "123456-01-234567"),)),
    # ---- the other kinds, as people write them -------------------------------------------
    ("카드 5412 7534 1234 5675 유효기간 03/27",
     (("credit_card", "5412 7534 1234 5675"),)),
    ("pls charge my visa 4532039812345129 exp 11/26",
     (("credit_card", "4532039812345129"),)),
    ("여권번호 M123A4567 (2031.05 만료)",
     (("passport", "M123A4567"),)),
    ("운전면허 경기 13-123456-78 입니다",
     (("driver_license", "경기 13-123456-78"),)),
    ("건강보험 번호: 51234567890",
     (("health_insurance", "51234567890"),)),
    ("연락은 010-3456-7890 (mobile) 또는 kim.sj@naver.com",
     (("phone", "010-3456-7890"), ("email", "kim.sj@naver.com"))),
    ("> 주민번호: 880611-6234789\n> 보내드립니다",
     (("foreigner_id", "880611-6234789"),)),
    ("[오후 4:20] 이과장 : 주민번호 011225 - 3451282",
     (("rrn", "011225 - 3451282"),)),
    ("서버 접속정보 ID admin / PW: Hanbit2024!",
     (("secret", "Hanbit2024!"),)),
    ("Call my cell +82 10 9876 5432 anytime",
     (("phone", "+82 10 9876 5432"),)),
    ("주문번호 2403151234567 / 주문자 연락처 010-2345-6789",
     (("phone", "010-2345-6789"),)),
    ("사업자번호 220-81-62517 대표 김한빛 (주민 690412-1573015)",
     (("rrn", "690412-1573015"),)),
]  # fmt: skip

LOOK_ALIKE_ROWS: list[tuple[str, Expected]] = [
    ("주문번호 2403151234567 결제 완료", ()),
    ("주문일 240315 주문번호 3234567 배송 준비중", ()),  # halves' shape, an order's label
    ("발주일 240315, 수량 1234567개", ()),
    ("CJ대한통운 운송장 6012-3456-7890", ()),
    ("우체국 등기 6865012345678 발송했습니다", ()),  # a bank's name, a tracking number
    ("사업자등록번호 220-81-62517", ()),
    ("법인등록번호 110111-0123458", ()),
    ("(주)한빛상사 1101110123458 서울특별시 중구", ()),
    ("대표번호 1588-1234 / 고객센터 1544-5678", ()),
    ("080-123-4567 무료수신거부", ()),
    ("제품코드 SM-A536N / 시리얼 R58T40ABCDE", ()),
    ("Invoice No. INV-2024-031512345 due 2024-04-15", ()),
    ("인보이스 번호 20240315-0001234", ()),
    ("기간: 2024.03.15 ~ 2024.04.14 (30일)", ()),
    ("[오후 1:05] 박대리 : 견적서 Q240315-12 보냈습니다 총 12,345,678원", ()),
    ("주문번호: 240315-3234567 / 수령인 김영희", ()),
    ("Tracking: 1Z999AA10123456784 (UPS)", ()),
    ("FedEx tracking 7489 1234 5678", ()),
    ("ISBN 979-11-1234-567-8", ()),
    ("거래처 코드 0012345678", ()),
    ("계좌 확인서 발급일 2024-03-15, 문서번호 2024-0315-1234", ()),
    ("송장번호 635812345678 / 받는분 김영희 010-****-5678", ()),
    ("승인번호 30012345 카드 결제 45,000원", ()),
    ("바코드 8801234567890", ()),
    ("회의 2024년 3월 15일 14:00, 3층 회의실 (내선 1234)", ()),
    ("사번 20230415, 입사 2023.04.15", ()),
    ("Ref: 2403-151234-56 계약 갱신", ()),
    ("전화 주문 1577-1234 (평일 9시~18시)", ()),
    ("모델 KT-2103154823", ()),
    ("[오후 3:33] 최주임 : 송장 번호 5102 3456 7890 이에요", ()),
    ("법인 계좌 (주)한빛 사업자번호 123-86-01234", ()),
    ("이름\t가입일\t회원번호\n김민수\t2024-03-15\t2403153234567", ()),
    ("홍길동 님 주문 2403153234567 배송 출발", ()),
    ("정산 2403153234567 처리 완료", ()),  # a word that starts like a name
    ("생년월일 1985.03.15 입사일 2019.07.01", ()),
    ("Order #2403151234567 shipped via CJ 6012-3456-7890", ()),
    ("허가번호 제2024-1234567호", ()),
    ("생년월일 870722 사번 1234567", ()),  # a birth date, then an employee number
    ("김민수 2403151234567", ()),  # born 1924 with no check digit: an order number's shape
]  # fmt: skip


@pytest.mark.parametrize(("row", "expected"), PERSONAL_ROWS + LOOK_ALIKE_ROWS)
def test_a_fourth_round_row_is_read_as_a_person_reads_it(row: str, expected: Expected) -> None:
    assert tuple((f.type, f.text) for f in detect(row)) == expected


def test_the_set_holds_sixty_rows_and_thirty_look_alikes() -> None:
    assert len(PERSONAL_ROWS) + len(LOOK_ALIKE_ROWS) >= 60
    assert len(LOOK_ALIKE_ROWS) >= 30
