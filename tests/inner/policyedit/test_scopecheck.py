"""A rule's scope of people checked against the directory (inner_agent.policyedit.scopecheck):
which addresses are not enabled people, in the list's order, any case; other scopes have none;
the confirmation names exactly the addresses warned about."""

from __future__ import annotations

from inner_agent.policyedit.scopecheck import (
    UnknownAddress,
    confirmation_of,
    scope_addresses,
    unknown_addresses,
)

PEOPLE = {
    "kim@corp.example": ("kim@corp.example", "김철수", "영업부", False),
    "park@corp.example": ("park@corp.example", "박민수", "영업부", True),
}


def test_missing_and_disabled_addresses_are_found_in_order_any_case():
    listed = ["Kim@Corp.Example", "typo@corp.exmaple", "park@corp.example"]
    assert unknown_addresses(listed, PEOPLE) == (
        UnknownAddress("typo@corp.exmaple", "missing"),
        UnknownAddress("park@corp.example", "disabled"),
    )
    assert [u.words for u in unknown_addresses(listed, PEOPLE)] == ["디렉터리에 없음",
                                                                    "사용 중지된 사람"]  # fmt: skip
    assert unknown_addresses(["kim@corp.example"], PEOPLE) == ()


def test_only_a_scope_of_people_lists_addresses():
    assert scope_addresses({"scope": "users", "users": [" a@x.example ", ""]}) == ["a@x.example"]
    assert scope_addresses({"scope": "groups", "groups": ["a@x.example"]}) == []
    assert scope_addresses({"scope": "users", "users": "a@x.example"}) == []


def test_the_confirmation_is_the_exact_set_in_one_line():
    unknown = (UnknownAddress("B@x.example", "missing"), UnknownAddress("a@x.example", "missing"))
    assert confirmation_of(unknown) == "a@x.example b@x.example"
    assert confirmation_of(()) == ""
