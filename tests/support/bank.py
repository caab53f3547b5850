"""A bank-sized directory for the policy editor: 5,000 people in 300 departments under 10
divisions, 60 groups, 8 ranks (the size the editor must stay usable at)."""

from __future__ import annotations

from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_model import Department, Snapshot, User

PEOPLE, DEPARTMENTS, DIVISIONS, GROUPS = 5000, 300, 10, 60
RANKS = ("사원", "주임", "대리", "과장", "차장", "부장", "이사", "상무")


def department_name(number: int) -> str:
    return f"지점{number:03d}"


def group_name(number: int) -> str:
    return f"업무그룹{number:02d}"


def bank_snapshot(directory: Directory) -> Snapshot:
    """The directory's own people and departments kept, the bank's added beside them."""
    divisions = [Department(f"본부{d:02d}", None) for d in range(DIVISIONS)]
    branches = [Department(department_name(n), f"본부{n % DIVISIONS:02d}")
                for n in range(DEPARTMENTS)]  # fmt: skip
    people = [
        User(f"e{n:05d}@bank.example", f"직원{n:05d}", department_name(n % DEPARTMENTS),
             "head" if n < DEPARTMENTS else "employee", RANKS[n % len(RANKS)],
             groups=tuple(sorted({group_name(n % GROUPS), group_name((n * 7) % GROUPS)})))
        for n in range(PEOPLE)
    ]  # fmt: skip
    current = directory.snapshot()
    return Snapshot(tuple(sorted([*current.users, *people], key=lambda u: u.email)),
                    tuple(sorted([*current.departments, *divisions, *branches],
                                 key=lambda d: d.name)))  # fmt: skip


def make_bank(directory: Directory) -> None:
    directory.replace(bank_snapshot(directory), "bank-size test")
