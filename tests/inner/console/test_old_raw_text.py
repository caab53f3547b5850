"""Text stored raw by a release before stop 29 is shown marked all the same (S6 red-team pass).

Since stop 29 the inner agent stores internet text with every invisible character a visible
``⟨U+XXXX⟩``; events and holds stored before keep the raw character until retention removes
them. These rows are written into the stores as an old release wrote them (raw), then read
through every surface: the pages, both exports and the API mark them at display time. Before
the fix each surface drew ``invoice\u202egpj.exe`` as ``invoiceexe.jpg``."""

from __future__ import annotations

import csv
import io
import json

from openpyxl import load_workbook

from inner_agent.inbound.holds import HoldBook
from tests.support.console import ADMIN, browser, console_site, csrf_of, sign_in
from tests.support.outbound import PASSWORDS

RLO, ZWSP = "\u202e", "\u200b"  # RIGHT-TO-LEFT OVERRIDE, ZERO WIDTH SPACE
OLD_IN, OLD_OUT = "a1" * 16, "b2" * 16
RAW_SUBJECT = f"송장 {ZWSP}재발송 {RLO}fdp.exe"
RAW_DISPLAY = f"Accounts {RLO}gro.knab"
RAW_SENDER = f"billing@{RLO}partner.example"
RAW_WITHHELD = f"invoice{RLO}gpj.exe"
RAW_DRAWN = f"scan{RLO}fdp.html"


def _old_site(tmp_path):
    site = console_site(tmp_path / "site")
    site.mails.inbound(OLD_IN, subject=RAW_SUBJECT, sender=RAW_SENDER, display=RAW_DISPLAY,
                       withheld=(RAW_WITHHELD,), drawn=(RAW_DRAWN,))  # fmt: skip
    site.mails.outbound(OLD_OUT, subject=f"명단 {RLO}xslx.gpj", attachments=(f"a{RLO}xslx.gnp",))
    admin = browser(site.app)
    assert sign_in(admin, ADMIN).status_code == 303
    return site, admin


def _assert_marked(text: str, where: str) -> None:
    assert RLO not in text, where
    assert ZWSP not in text, where
    assert "⟨U+202E⟩" in text, where


def test_old_raw_events_are_marked_on_the_console_pages(tmp_path):
    _site, admin = _old_site(tmp_path)
    for path in ("/mail", "/mail?direction=in", f"/mail/in/{OLD_IN}", f"/mail/out/{OLD_OUT}",
                 "/stats?group=sender-domain"):  # fmt: skip
        page = admin.get(path)
        assert page.status_code == 200, path
        _assert_marked(page.text, path)
    assert RLO not in admin.get("/").text
    detail = admin.get(f"/mail/in/{OLD_IN}").text
    for shown in ("invoice⟨U+202E⟩gpj.exe", "scan⟨U+202E⟩fdp.html", "송장 ⟨U+200B⟩재발송"):
        assert shown in detail, shown


def test_old_raw_events_are_marked_in_both_exports(tmp_path):
    _site, admin = _old_site(tmp_path)
    token = csrf_of(admin.get("/").text)
    for path, extra in (("/mail/export", {}), ("/stats/export", {"group": "sender-domain"})):
        as_csv = admin.post(path, data={"csrf": token, "format": "csv", **extra})
        assert as_csv.status_code == 200, path
        rows = csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig")))
        _assert_marked("\n".join(",".join(row) for row in rows), f"CSV {path}")
        as_xlsx = admin.post(path, data={"csrf": token, "format": "xlsx", **extra})
        sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
        cells = [str(v) for row in sheet.iter_rows(values_only=True) for v in row if v]
        _assert_marked("\n".join(cells), f"XLSX {path}")


def test_old_raw_events_are_marked_in_the_api(tmp_path):
    site, _admin = _old_site(tmp_path)
    script = browser(site.app)
    headers = {"Authorization": f"Bearer {site.token_for(ADMIN)}"}
    for path in ("/api/v1/mail", f"/api/v1/mail/{OLD_IN}", f"/api/v1/mail/{OLD_OUT}",
                 "/api/v1/stats?group=sender-domain"):  # fmt: skip
        answer = script.get(path, headers=headers)
        assert answer.status_code == 200, path
        _assert_marked(json.dumps(answer.json(), ensure_ascii=False), path)


def test_a_request_path_quoted_in_an_api_error_is_marked(tmp_path):
    site, _admin = _old_site(tmp_path)
    headers = {"Authorization": f"Bearer {site.token_for(ADMIN)}"}
    answer = browser(site.app).get(f"/api/v1/nothing{RLO}here", headers=headers)
    assert answer.status_code == 404
    assert RLO not in answer.text
    assert "nothing⟨U+202E⟩here" in answer.json()["message"]


def test_an_old_raw_hold_is_marked_on_the_employees_held_mail_page(tmp_path):
    site = console_site(tmp_path / "site")
    book = HoldBook(site.parts.section.spool_dir.parent / "inner" / "inbound-holds.db")
    book.add("in-old", rule="exe", recipients=["lee@corp.example"], approvers=["jung@corp.example"],
             approver_kind="security_officer", policy_version=1,
             held_until="2027-01-20T00:00:00+00:00", sender=f"x{RLO}@outside.example",
             subject=f"invoice{RLO}fdp.exe")  # fmt: skip
    book.close()
    lee = browser(site.app)
    assert sign_in(lee, "lee@corp.example", PASSWORDS["lee@corp.example"]).status_code == 303
    page = lee.get("/my/held").text
    _assert_marked(page, "held mail page")
    assert "invoice⟨U+202E⟩fdp.exe" in page


def test_what_a_person_typed_into_a_form_comes_back_as_typed(tmp_path):
    """A search word or a rule's value with an invisible character is returned to its field
    unmarked: saving the form again must not write the markers into it."""
    _site, admin = _old_site(tmp_path)
    page = admin.get("/mail", params={"subject": f"송장 {ZWSP}재발송"}).text
    assert f'value="송장 {ZWSP}재발송"' in page


def test_a_flood_of_held_mail_to_others_does_not_hide_ones_own(tmp_path):
    """S6 red team: the page read the newest 1000 holds of everyone and kept the employee's:
    1000 held mails sent to someone else after hers (one rule, one sender) took hers off it."""
    from inner_agent.outbound.employee_pages import MAX_HOLDS_READ

    site = console_site(tmp_path / "site")
    book = HoldBook(site.parts.section.spool_dir.parent / "inner" / "inbound-holds.db")
    ago = iter(range(MAX_HOLDS_READ + 1, 0, -1))
    book.clock = lambda: 1_800_000_000 - next(ago)
    held = {"rule": "exe", "approvers": ["jung@corp.example"], "policy_version": 1,
            "approver_kind": "security_officer", "held_until": "2027-01-20T00:00:00+00:00",
            "sender": "x@outside.example"}  # fmt: skip
    book.add("in-hers", recipients=["Lee@Corp.Example"], subject="그녀의 보류 메일", **held)
    for n in range(MAX_HOLDS_READ):
        book.add(f"in-flood-{n}", recipients=["park@corp.example"], subject="flood", **held)
    book.close()
    lee = browser(site.app)
    assert sign_in(lee, "lee@corp.example", PASSWORDS["lee@corp.example"]).status_code == 303
    page = lee.get("/my/held").text
    assert "그녀의 보류 메일" in page
    assert "flood" not in page
