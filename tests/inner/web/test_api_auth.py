"""The API's authentication (issue 16.7): bearer tokens made for an account, acting with the
account's role at each request; 401 with WWW-Authenticate and 403 with JSON bodies; refused
tokens limited per client; tokens stored only as their SHA-256 digest."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from inner_agent.web.api_tokens import MAX_TOKENS_PER_ACCOUNT, token_id_of
from inner_agent.web.errors import TokenRefused
from inner_agent.web.roles import Role
from tests.support.console import ADMIN, AUDITOR, SECURITY, bearer, browser, console_site
from tests.support.outbound import HR_CSV

ATTACKER = "10.6.6.6"


@pytest.fixture
def site(tmp_path):
    return console_site(tmp_path)


def whoami(site, token: str, address: str = "10.1.1.20"):
    return browser(site.app, address).get("/api/v1/whoami", headers=bearer(token))


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert set(body) == {"error", "message"}


def test_whoami_names_the_account_and_its_role(site):
    token = site.token_for(ADMIN)
    response = whoami(site, token)
    assert response.status_code == 200
    assert response.json() == {"account": ADMIN, "role": "admin", "roles": ["admin"],
                               "via": "token", "token": token_id_of(token)}  # fmt: skip
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers


def test_no_token_is_401_with_a_bearer_challenge(site):
    response = browser(site.app).get("/api/v1/access-records")
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="maildiode"'


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Basic YWRtaW46YWRtaW4=", "Bearer mdt_000000000000_" + "A" * 43, "Bearer"],
)
def test_a_token_that_is_not_one_is_401_invalid_token(site, header):
    response = browser(site.app).get("/api/v1/whoami", headers={"Authorization": header})
    assert_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == (
        'Bearer realm="maildiode", error="invalid_token"'
    )


def test_a_right_id_with_a_wrong_secret_is_refused(site):
    token = site.token_for(ADMIN)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_error(whoami(site, forged), 401, "invalid_token")
    assert whoami(site, token).status_code == 200


def test_wrong_role_is_403_with_a_json_body(site):
    response = browser(site.app).get("/api/v1/access-records",
                                     headers=bearer(site.token_for(SECURITY)))  # fmt: skip
    assert_error(response, 403, "forbidden")
    assert "admin or auditor" in response.json()["message"]


def test_a_revoked_token_stops_working(site):
    token = site.token_for(AUDITOR)
    assert whoami(site, token).status_code == 200
    site.listener.tokens.revoke(token_id_of(token))
    assert_error(whoami(site, token), 401, "invalid_token")
    with pytest.raises(TokenRefused, match="revoked before"):
        site.listener.tokens.revoke(token_id_of(token))


def test_a_disabled_accounts_tokens_stop_and_come_back_with_it(site):
    token = site.token_for(AUDITOR)
    site.parts.directory.accounts.set_disabled(AUDITOR, True)
    assert_error(whoami(site, token), 401, "invalid_token")
    site.parts.directory.accounts.set_disabled(AUDITOR, False)
    assert whoami(site, token).status_code == 200


def test_a_role_change_applies_to_existing_tokens(site):
    token = site.token_for(AUDITOR)
    records = "/api/v1/access-records"
    assert browser(site.app).get(records, headers=bearer(token)).status_code == 200
    site.parts.directory.accounts.set_role(AUDITOR, Role.SECURITY)
    assert_error(browser(site.app).get(records, headers=bearer(token)), 403, "forbidden")
    assert whoami(site, token).json()["role"] == "security"
    site.parts.directory.accounts.set_role(AUDITOR, Role.ADMIN)
    assert browser(site.app).get(records, headers=bearer(token)).status_code == 200


def test_a_directory_admin_who_left_loses_the_api_at_the_import(site):
    """choi is a department head given the admin role; the next HR export no longer lists
    them: their token stops working; listed again, it works again."""
    choi = "choi@corp.example"
    site.parts.directory.accounts.set_role(choi, Role.ADMIN)
    token = site.token_for(choi)
    assert sorted(whoami(site, token).json()["roles"]) == ["admin", "approver", "employee"]
    without = HR_CSV.decode().replace("choi@corp.example,최고위,경영본부,,head\n", "").encode()
    site.parts.directory.import_csv(without)
    assert_error(whoami(site, token), 401, "invalid_token")
    site.parts.directory.import_csv(HR_CSV)
    assert whoami(site, token).json()["role"] == "admin"


def test_refused_tokens_are_limited_per_client_and_recorded(site):
    """Guessing tokens from one address: after the burst, 429 before the token is looked at,
    even for a good one; another address is not affected; the limit refills with time."""
    good = site.token_for(ADMIN)
    for _ in range(10):  # per_client_burst
        assert whoami(site, "mdt_0123456789ab_" + "x" * 43, ATTACKER).status_code == 401
    limited = whoami(site, good, ATTACKER)
    assert_error(limited, 429, "too_many_requests")
    assert int(limited.headers["retry-after"]) >= 1
    assert whoami(site, good, "10.1.1.21").status_code == 200
    site.parts.clock.now += 60
    assert whoami(site, good, ATTACKER).status_code == 200
    refused = site.records(action="api_token_refused")
    assert len(refused) == 10
    assert {r.address for r in refused} == {ATTACKER}
    assert refused[0].detail == "token 0123456789ab"
    assert refused[0].account == "-"


def test_good_requests_do_not_use_up_the_limit(site):
    good = site.token_for(ADMIN)
    for _ in range(30):
        assert whoami(site, good, ATTACKER).status_code == 200


def test_tokens_are_stored_as_their_digest_only(site):
    token = site.token_for(ADMIN)
    db = sqlite3.connect(site.parts.section.directory_db)
    rows = db.execute("SELECT token_id, account, digest FROM api_tokens").fetchall()
    db.close()
    assert rows == [(token_id_of(token), ADMIN, hashlib.sha256(token.encode()).hexdigest())]
    raw = site.parts.section.directory_db.read_bytes()
    assert token.encode() not in raw
    secret = token.removeprefix(f"mdt_{token_id_of(token)}_")
    assert len(secret) == 43  # the secret may itself hold "_": cut by the prefix, not by split
    assert secret.encode() not in raw


def test_last_used_is_kept_without_a_write_per_request(site):
    token = site.token_for(ADMIN)
    token_id = token_id_of(token)
    assert site.listener.tokens.token(token_id).last_used is None
    whoami(site, token)
    first = site.listener.tokens.token(token_id).last_used
    assert first == site.parts.clock.now
    site.parts.clock.now += 30
    whoami(site, token)
    assert site.listener.tokens.token(token_id).last_used == first
    site.parts.clock.now += 60
    whoami(site, token)
    assert site.listener.tokens.token(token_id).last_used == site.parts.clock.now


def test_an_account_holds_a_bounded_number_of_live_tokens(site):
    for _ in range(MAX_TOKENS_PER_ACCOUNT):
        site.token_for(AUDITOR)
    with pytest.raises(TokenRefused, match="live tokens"):
        site.token_for(AUDITOR)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("since=yesterday", "since"), ("limit=0", "limit"), ("limit=5000", "limit"),
     ("offset=-1", "offset"), ("action=hack", "action"), ("user=x", "user"),
     # Digits Python calls digits but int() refuses (a 500 before): superscript, Arabic-Indic.
     ("limit=%C2%B2", "limit"), ("offset=%D9%A3", "offset")],
)  # fmt: skip
def test_bad_query_parameters_are_400_naming_the_parameter(site, query, parameter):
    response = browser(site.app).get(f"/api/v1/access-records?{query}",
                                     headers=bearer(site.token_for(AUDITOR)))  # fmt: skip
    assert_error(response, 400, "bad_request")
    assert response.json()["message"].startswith(f"{parameter}:")


def test_unknown_endpoints_and_methods_answer_json(site):
    client = browser(site.app)
    assert_error(client.get("/api/v1/nothing"), 404, "not_found")
    assert_error(client.post("/api/v1/whoami", headers=bearer(site.token_for(ADMIN))), 405,
                 "method_not_allowed")  # fmt: skip
    assert client.get("/nothing").status_code == 404
