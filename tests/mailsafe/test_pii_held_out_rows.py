"""Issue 19, third round: rows written the way people send them, not by the labelled set's
generator (customer lists, HR mails, KakaoTalk chats pasted into mail, scanned-form text),
each with every finding a person reading it would point at, and nothing else.

The rows were written by hand for this file (the numbers are made up; resident numbers carry
a valid check digit unless marked post-2020). The detector is run on each and must report
exactly the listed findings: a missing one is a miss, an extra one a false alarm.
"""

from __future__ import annotations

import pytest

from mailsafe.pii import detect

Expected = tuple[tuple[str, str], ...]

# (row, what a person points at: (kind, value) in order of position)
ROWS: list[tuple[str, Expected]] = [
    # ---- customer lists (CSV, spreadsheet rows pasted into a mail) -----------------------
    ("번호,성명,생년월일,연락처,주소\n1,김민수,850315,010-2345-6789,서울시 강남구 테헤란로",
     (("phone", "010-2345-6789"),)),
    ("고객명\t주민등록번호\t휴대폰\n박지영\t920814-2345678\t010-9876-5432",
     (("rrn", "920814-2345678"), ("phone", "010-9876-5432"))),
    ("이름 | 주민번호 | 계좌\n최유진 | 9503142345672 | 국민 123456-01-234567",
     (("rrn", "9503142345672"), ("bank_account", "123456-01-234567"))),
    ("김영희 870722-1234566 서울시 마포구 월드컵로 12",
     (("rrn", "870722-1234566"),)),
    ("이서준 210315-4823911 경기도 성남시 분당구",  # post-2020: no check digit
     (("rrn", "210315-4823911"),)),
    ("박하은, 2206073145620, 010-3456-7890",  # post-2020, bare, in a contact row
     (("rrn", "2206073145620"), ("phone", "010-3456-7890"))),
    ("No.\t고객\t외국인등록번호\n3\tNGUYEN VAN AN\t900101-5234561",
     (("foreigner_id", "900101-5234561"),)),
    # ---- HR mails -----------------------------------------------------------------------
    ("급여 이체 계좌 변경 요청드립니다. 우리은행 1002-345-678901 (예금주 최유진)",
     (("bank_account", "1002-345-678901"),)),
    ("연말정산 부양가족 추가: 자녀 이도윤 (주민 041225-3456782)",
     (("rrn", "041225-3456782"),)),
    ("출장자 여권 정보: 홍길동 / M12345678 / 만료 2029.05.01",
     (("passport", "M12345678"),)),
    ("신규 입사자 정보 - 성명 강민호, 주민번호 780512-1234560, 연락처 010-5555-1234",
     (("rrn", "780512-1234560"), ("phone", "010-5555-1234"))),
    ("법인카드 5412-7534-1234-5675 분실 신고 부탁드립니다",
     (("credit_card", "5412-7534-1234-5675"),)),
    ("운전면허 갱신 확인 바랍니다. 면허번호 서울 12-345678-90",
     (("driver_license", "서울 12-345678-90"),)),
    ("건강보험증 번호 12345678901 로 피부양자 등록 완료했습니다",
     (("health_insurance", "12345678901"),)),
    ("사번 20190315 / 입사일 2019-03-15 / 부서 인사팀",  # employee number and a date
     ()),
    ("주민등록번호 뒷자리 1****** 는 가려서 보내주세요 (앞자리 850715)",  # masked
     ()),
    # ---- KakaoTalk chats pasted into a mail ---------------------------------------------
    ("[오후 3:12] 김대리 : 계좌 알려드릴게요 카카오뱅크 3333-01-1234567",
     (("bank_account", "3333-01-1234567"),)),
    ("[오후 3:13] 이과장 : 네 감사합니다~ 제 번호 010 4567 8910 으로 연락주세요",
     (("phone", "010 4567 8910"),)),
    ("[오전 9:01] 박팀장 : 주민번호 필요하대요 8507151234568 이거 맞나요?",
     (("rrn", "8507151234568"),)),
    ("[오후 2:30] 정주임 : 택배 송장번호 6012-3456-7890 확인 부탁해요",  # invoice
     ()),
    ("[오후 5:45] 최사원 : 회의 2024-03-15 14:00 대회의실, 참석자 12명",
     ()),
    ("[오후 6:02] 윤대리 : 휴대폰 010-7777-8888 / 여권 M98765432 보냈어요",
     (("phone", "010-7777-8888"), ("passport", "M98765432"))),
    ("[오후 6:03] 윤대리 : HP 010 2222 3333 / 면허 12-34-567890-12",
     (("phone", "010 2222 3333"), ("driver_license", "12-34-567890-12"))),
    # ---- scanned-form text (what a form's text layer or a typed copy reads) --------------
    ("성 명 : 김 철 수    주민등록번호 : 780512 - 1234560",
     (("rrn", "780512 - 1234560"),)),
    ("신청인 성명 홍길동 생년월일 1980.01.01 전화 02-123-4567",
     (("phone", "02-123-4567"),)),
    ("사업자등록번호 123-45-67890 상호 (주)한빛 대표 김한빛",
     ()),
    ("법인등록번호 110111-1234567 본점 서울특별시 중구",
     ()),
    ("(주)한빛 110111-1234567 서울시 중구 세종대로",  # a company's row, no label
     ()),
    ("팩스 02-987-6543 / 담당 이수진",
     (("phone", "02-987-6543"),)),
    ("외국인등록번호 900101-5234561 국적 베트남",
     (("foreigner_id", "900101-5234561"),)),
    ("건강보험증 번호 82019302410 / 환불 계좌: 신한 110-123-456789",
     (("health_insurance", "82019302410"), ("bank_account", "110-123-456789"))),
    # ---- look-alikes in business mail ----------------------------------------------------
    ("주문번호 202403151234567 배송 완료되었습니다", ()),
    ("견적번호 Q-2024-0315-001, 금액 1,234,567원 (부가세 별도)", ()),
    ("모델명 SM-G998N 시리얼 R3CR40ABCDE 수리 접수", ()),
    ("ISBN 978-89-1234-567-8 도서 30권 주문", ()),
    ("버전 10.0.19045.3803 에서 재현됩니다", ()),
    ("서버 IP 192.168.100.200 포트 8080", ()),
    ("등기번호 1234-5678-9012 로 발송했습니다", ()),
    ("제품코드 M37514912-K 재고 12개", ()),
    ("계약번호 2024-0315-0012 / 고객번호 880101234567", ()),
    ("신청번호 240315-1234562 접수 완료", ()),  # a form's number in a resident number's shape
    ("조회번호: 240315-1234562 / 출고번호: 230101-2345674", ()),
    ("사건번호 240315-1234562 관련 자료 송부", ()),
    ("Lot No. 240315-1234562, 유효기간 2026-03", ()),
    ("전표번호 2403151234560 처리 완료", ()),
    ("follow us @acme.co for updates", ()),
    ("회의실 @ 3층 대회의실, 시간 @ 14:00", ()),
    # ---- a number whose next line labels a value of its own ------------------------------
    ("명단: 이민수, 171027-4563743, 영업팀\nModel MX99635878",
     (("rrn", "171027-4563743"),)),
    ("880528-1879538\n품번 모델명 M99150624 재고 있음",
     (("rrn", "880528-1879538"),)),
    ("Call me at 02-700-6721 after 3pm.\n문서번호 3941-64-8411318",
     (("phone", "02-700-6721"),)),
    ("Card number 4245162321576\t신한은행 110-129-512822",  # no Luhn: no card, no account
     (("bank_account", "110-129-512822"),)),
    # ---- addresses and secrets -----------------------------------------------------------
    ("담당자 메일 hong.gildong@company.co.kr 로 회신 바랍니다",
     (("email", "hong.gildong@company.co.kr"),)),
    ("VPN 계정 id: kim.ds / pw: Qwer1234!",
     (("secret", "Qwer1234!"),)),
]  # fmt: skip


@pytest.mark.parametrize(("row", "expected"), ROWS)
def test_a_held_out_row_is_read_as_a_person_reads_it(row: str, expected: Expected) -> None:
    assert tuple((f.type, f.text) for f in detect(row)) == expected
