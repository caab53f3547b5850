"""Internet text that reorders itself: a mail whose Subject, From and file names carry bidi
overrides reaches the console through the inner agent's real path (a bundle handled by
``BundleHandler``, its audit events read back by the console) and is shown there, in the
exports and in the API as the notification shows it: every invisible character a visible
``⟨U+XXXX⟩`` (A1 red-team pass: before the fix the console drew ``invoice\u202egpj.exe`` as
``invoiceexe.jpg``)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from openpyxl import load_workbook

from agentkit.audit import AuditLog
from inner_agent.bundle_check import ImagePolicy
from inner_agent.bundle_handler import BundleHandler
from inner_agent.inject import InjectionQueue
from inner_agent.notify import NotifyOptions
from mailsafe.payload import PageInfo, Withheld, encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import rendered
from tests.support.console import ADMIN, browser, console_site, csrf_of, sign_in

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202egpj.exe" reads "invoiceexe.jpg"
MAIL_ID = "f1" * 16
HOSTILE_SUBJECT = f"송장 \u200b재발송 {RLO}fdp.exe"
HOSTILE_FROM = f"Accounts {RLO}gro.knab <billing@partner.example>"
HOSTILE_WITHHELD = f"invoice{RLO}gpj.exe"
HOSTILE_DRAWN = f"scan{RLO}fdp.html"


def _hostile_bundle() -> ReceivedBundle:
    mail = rendered(subject=HOSTILE_SUBJECT, from_=HOSTILE_FROM, mail_id=MAIL_ID, pages=2)
    manifest = mail.manifest
    pages = (manifest.pages[0], PageInfo("image/png", 40, 30, f"attachment:{HOSTILE_DRAWN}", 0))
    withheld = (Withheld(HOSTILE_WITHHELD, "application/x-msdownload", 10, "ab" * 32, "x"),)
    manifest = dataclasses.replace(manifest, pages=pages, withheld=withheld)
    data = encode_package(dataclasses.replace(mail, manifest=manifest))
    return ReceivedBundle("inbound", 1, b"\1" * 16, Kind.DATA, data, 1_800_000_000_000, 1)


def _received_through_the_inner_agent(tmp_path):
    """A console site whose audit store holds the hostile mail as the inner agent records it."""
    site = console_site(tmp_path / "site")
    audit = AuditLog(site.access.path, agent="inner", clock=lambda: site.parts.clock.now - 60)
    handler = BundleHandler(InjectionQueue(tmp_path / "q.db"), audit,
                            NotifyOptions(our_domains=("corp.example",)),
                            ImagePolicy(max_pixels=1_000_000), tmp_path / "quarantine")  # fmt: skip
    handler(_hostile_bundle())
    admin = browser(site.app)
    assert sign_in(admin, ADMIN).status_code == 303
    return site, admin


def _assert_shown_as_markers(text: str, where: str) -> None:
    assert RLO not in text, where
    assert "\u200b" not in text, where
    assert "⟨U+202E⟩" in text, where


def test_bidi_overrides_from_the_internet_are_markers_on_console_pages_and_exports(tmp_path):
    site, admin = _received_through_the_inner_agent(tmp_path)
    listed = admin.get("/mail", params={"direction": "in"})
    assert listed.status_code == 200
    assert MAIL_ID in listed.text
    _assert_shown_as_markers(listed.text, "mail list")
    detail = admin.get(f"/mail/in/{MAIL_ID}")
    assert detail.status_code == 200
    _assert_shown_as_markers(detail.text, "mail detail")
    for shown in ("invoice⟨U+202E⟩gpj.exe", "scan⟨U+202E⟩fdp.html", "송장 ⟨U+200B⟩재발송"):
        assert shown in detail.text, shown
    token = csrf_of(admin.get("/").text)
    exported = admin.post("/mail/export", data={"csrf": token, "format": "csv",
                                                "direction": "in"})  # fmt: skip
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    _assert_shown_as_markers("\n".join(",".join(row) for row in rows), "CSV export")
    workbook = admin.post("/mail/export", data={"csrf": token, "format": "xlsx",
                                                "direction": "in"})  # fmt: skip
    cells = [str(v) for row in load_workbook(io.BytesIO(workbook.content)).active.iter_rows(
        values_only=True) for v in row if v is not None]  # fmt: skip
    _assert_shown_as_markers("\n".join(cells), "XLSX export")
    api_token = site.token_for(ADMIN)
    found = browser(site.app).get(f"/api/v1/mail/{MAIL_ID}",
                                  headers={"Authorization": f"Bearer {api_token}"})  # fmt: skip
    assert found.status_code == 200
    _assert_shown_as_markers(json.dumps(found.json(), ensure_ascii=False), "API")
