"""The console's API (issue 16.7): the contract's shapes, counts that match the mails written,
401 without a token and 403 for a role that may not, a security officer's narrowed answers,
and every detail request an access record an auditor reads back through the API."""

from __future__ import annotations

from tests.support.console import browser, console_site
from tests.support.outbound import RRN, RRN_MASKED

CONTRACT = {"id", "direction", "time", "sender", "recipients", "subject", "outcome"}


def test_without_a_token_401_and_with_a_role_that_may_not_403(console):
    for path in ("/api/v1/status", "/api/v1/mail", "/api/v1/mail/x", "/api/v1/stats"):
        anonymous = browser(console.site.app).get(path)
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"] == "unauthenticated"
    for path in ("/api/v1/status", "/api/v1/stats"):
        refused = console.api("security", path)
        assert refused.status_code == 403, path
        assert refused.json()["error"] == "forbidden"


def test_the_list_answers_the_contract_and_counts_what_was_written(console):
    inbound = console.api("auditor", "/api/v1/mail?direction=in").json()
    assert inbound["total"] == 3
    assert all(CONTRACT <= set(item) for item in inbound["items"])
    assert {i["id"] for i in inbound["items"]} == {console.ids[k] for k in
                                                   ("plain_in", "xss_in", "quarantined_in")}  # fmt: skip
    both = console.api("auditor", "/api/v1/mail").json()
    assert both["total"] == len(console.ids)
    held = console.api("auditor", "/api/v1/mail?outcome=held&q=송부").json()
    assert [i["id"] for i in held["items"]] == [console.ids["held_out"]]
    assert held["items"][0]["subject"] == f"명단 송부 {RRN_MASKED}"
    stats = console.api("admin", "/api/v1/stats?by=day&group=direction").json()
    assert set(stats) == {"rows"}
    counted = {}
    for row in stats["rows"]:
        assert set(row) == {"period", "group", "count"}
        counted[row["group"]] = counted.get(row["group"], 0) + row["count"]
    assert counted == {"in": 3, "out": 2}


def test_a_detail_has_the_trail_and_masked_findings_and_is_an_access_record(console):
    mail_id = console.ids["held_out"]
    found = console.api("security", f"/api/v1/mail/{mail_id}")
    assert found.status_code == 200
    body = found.json()
    assert CONTRACT <= set(body)
    assert [e["step"] for e in body["trail"]] == ["accepted_outbound", "scanned", "held"]
    assert all({"time", "agent", "step"} <= set(e) for e in body["trail"])
    assert body["findings"] == [{"type": "rrn", "masked": RRN_MASKED,
                                 "where": "attachment:명단.xlsx"}]  # fmt: skip
    assert RRN not in found.text
    records = console.api("auditor", f"/api/v1/access-records?mail={mail_id}").json()
    actions = {(r["account"], r["action"], r["detail"]) for r in records["items"]}
    assert ("sec@ops.example", "mail_viewed", "api") in actions
    assert ("sec@ops.example", "findings_viewed", "api") in actions
    assert all({"time", "account", "address", "action", "mail"} <= set(r) for r in records["items"])


def test_a_security_officer_gets_its_mail_and_a_404_for_the_rest(console):
    listed = console.api("security", "/api/v1/mail").json()
    assert {i["id"] for i in listed["items"]} == {console.ids["held_out"],
                                                  console.ids["quarantined_in"]}  # fmt: skip
    assert listed["total"] == 2
    assert console.api("security", "/api/v1/mail?outcome=delivered").json() == {
        "items": [], "total": 0}  # fmt: skip
    outside = console.api("security", f"/api/v1/mail/{console.ids['plain_in']}")
    tampered = console.api("security", f"/api/v1/mail/{console.ids['held_out'][:-1]}x")
    for response in (outside, tampered):
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_parameters_that_cannot_be_used_are_named(console):
    for path, name in (("/api/v1/mail?since=yesterday", "since"),
                       ("/api/v1/mail?outcome=lost", "outcome"),
                       ("/api/v1/mail?colour=red", "colour"),
                       ("/api/v1/stats?by=week", "by"),
                       ("/api/v1/mail?tz=Mars/Olympus", "tz"),
                       ("/api/v1/mail/abc?direction=up", "direction")):  # fmt: skip
        response = console.api("admin", path)
        assert response.status_code == 400, path
        assert response.json()["error"] == "bad_request"
        assert response.json()["message"].startswith(name), path


def test_times_in_the_asked_zone(console):
    seoul = console.api("admin", f"/api/v1/mail/{console.ids['plain_in']}").json()
    utc = console.api("admin", f"/api/v1/mail/{console.ids['plain_in']}?tz=UTC").json()
    assert seoul["time"].endswith("+09:00")
    assert utc["time"].endswith("+00:00")


def test_the_status_has_both_sides_and_english_alarms(console):
    status = console.api("auditor", "/api/v1/status").json()
    assert set(status) >= {"time", "mail", "approvals", "inner", "outer", "alarms"}
    assert status["outer"]["state"] == "missing"
    assert status["approvals"]["pending"] == 1
    assert status["inner"]["host"]["memory_total"] > 0
    codes = {a["code"] for a in status["alarms"]}
    assert "outer_report_missing" in codes
    assert all(a["message"].isascii() for a in status["alarms"])


def test_an_id_in_both_directions_needs_its_direction(tmp_path):
    site = console_site(tmp_path)
    site.mails.inbound("f" * 32)
    site.mails.outbound("f" * 32)
    token = site.token_for("admin@ops.example")
    headers = {"Authorization": f"Bearer {token}"}
    client = browser(site.app)
    assert client.get(f"/api/v1/mail/{'f' * 32}", headers=headers).status_code == 409
    found = client.get(f"/api/v1/mail/{'f' * 32}?direction=out", headers=headers)
    assert found.status_code == 200
    assert found.json()["direction"] == "out"
