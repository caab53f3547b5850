"""The HR export as a file: CSV or XLSX, with Korean or English column names and role names,
read into a ``Snapshot``. Every refusal names the file, the line and the column.

=============  ==========================  ========  ==============================================
column         also read as                required  meaning
=============  ==========================  ========  ==============================================
email          이메일, 메일, e-mail, mail  yes       the person's address (the key; lower-cased)
name           이름, 성명                  no        display name
department     부서, 부서명                yes       department name (or code) as HR writes it
parent         상위부서, parent_department no        the department above it; same on every row
rank           직급                        no        job rank (usable in rule scopes)
role           역할                        no        see ``directory_model`` (Korean or English)
manager        상사, 상급자                no        the manager's address: approves first
groups         그룹                        no        named groups, separated by ``;``
=============  ==========================  ========  ==============================================

A header that is none of these is ignored (HR exports carry many). CSV is UTF-8 (with or
without BOM) or CP949 (what Korean Excel writes); XLSX is read from its first sheet.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence

from inner_agent.outbound.directory_model import (
    ADMINISTRATOR,
    APPROVING_ROLES,
    SECURITY_OFFICER,
    Department,
    Snapshot,
    User,
)
from inner_agent.outbound.directory_values import (
    MAX_LABEL_CHARS,
    address_problem,
    label_problem,
    shown_in_note,
)
from inner_agent.outbound.errors import DirectoryError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_ROWS",
    "check_snapshot",
    "parse_hr_csv",
    "parse_hr_file",
    "parse_role",
    "parse_rows",
]

# An HR export of a very large organisation is a few MB; anything far bigger is not one.
MAX_FILE_BYTES = 64 << 20
# Far above any organisation's head count; bounds the memory an XLSX's rows can take.
MAX_ROWS = 500_000
# What an XLSX may unpack to: about 400,000 rows of eight short cells (Excel's XML takes some
# 300 bytes a row), twenty times a large bank's staff. openpyxl holds the shared strings (and
# any one cell) in memory, so this bounds what a ZIP bomb makes it take: a 128 KB file that
# unpacked to one 128 MiB cell took 280 MB and 5 s before it was refused for its length.
MAX_UNPACKED_BYTES = 128 << 20
# A workbook is a dozen parts; thousands are no HR export.
MAX_PARTS = 1000

_HEADERS = {
    "email": ("email", "e-mail", "mail", "이메일", "메일", "전자우편"),
    "name": ("name", "이름", "성명"),
    "department": ("department", "dept", "부서", "부서명"),
    "parent": ("parent", "parent_department", "상위부서", "상위 부서"),
    "rank": ("rank", "직급"),
    "role": ("role", "역할"),
    "manager": ("manager", "상사", "상급자"),
    "groups": ("groups", "group", "그룹"),
}
_COLUMN = {alias.lower(): column for column, aliases in _HEADERS.items() for alias in aliases}

_ROLE_NAMES = {
    "": "", "member": "", "직원": "", "구성원": "",
    "head": "head", "approver": "head", "부서장": "head", "승인자": "head",
    "delegate": "delegate", "대결자": "delegate",
    SECURITY_OFFICER: SECURITY_OFFICER, "security officer": SECURITY_OFFICER,
    "보안담당자": SECURITY_OFFICER, "보안 담당자": SECURITY_OFFICER,
    ADMINISTRATOR: ADMINISTRATOR, "admin": ADMINISTRATOR, "관리자": ADMINISTRATOR,
}  # fmt: skip
_ROLE_HELP = (
    f"not head, delegate, {SECURITY_OFFICER} or empty (nor administrator, approver, "
    "부서장, 대결자, 보안담당자, 관리자)"
)


def parse_role(untrusted: str) -> str | None:
    """The stored role for a role name in Korean or English, or None for no known role."""
    return _ROLE_NAMES.get(" ".join(untrusted.split()).lower())


def parse_hr_file(raw: bytes, name: str) -> Snapshot:
    """The snapshot a CSV or XLSX export describes (XLSX told by its ZIP signature)."""
    if len(raw) > MAX_FILE_BYTES:
        raise DirectoryError(f"{name}: larger than {MAX_FILE_BYTES} bytes")
    rows = _xlsx_rows(raw, name) if raw.startswith(b"PK\x03\x04") else _csv_rows(raw, name)
    return parse_rows(rows, name)


def parse_hr_csv(raw: bytes, name: str = "HR export") -> tuple[list[User], list[Department]]:
    """Users and departments from CSV bytes (the first release's entry point)."""
    if len(raw) > MAX_FILE_BYTES:
        raise DirectoryError(f"{name}: larger than {MAX_FILE_BYTES} bytes")
    snapshot = parse_rows(_csv_rows(raw, name), name)
    return list(snapshot.users), list(snapshot.departments)


def parse_rows(rows: Iterable[Sequence[str]], name: str) -> Snapshot:
    lines = iter(rows)
    columns = _columns(next(lines, []), name)
    users: dict[str, User] = {}
    parents: dict[str, str | None] = {}
    for line, row in enumerate(lines, start=2):
        if line > MAX_ROWS + 1:
            raise DirectoryError(f"{name}: more than {MAX_ROWS} rows")
        # NFC: a Mac writes Hangul decomposed, and "영업부" so written is another department
        # to a rule that names the one typed.
        cells = {columns[i]: unicodedata.normalize("NFC", (v or "").strip())
                 for i, v in enumerate(row) if i in columns}  # fmt: skip
        if not any(cells.values()):
            continue  # a blank row (spreadsheets end with some)
        where = f"{name}: line {line}"
        user = _user(cells, where)
        if user.email in users:
            raise DirectoryError(f"{where}: email {user.email} appears twice")
        users[user.email] = user
        _note_parent(parents, user.department, cells.get("parent") or None, where)
    for parent in [p for p in parents.values() if p is not None]:
        parents.setdefault(parent, None)
    departments = tuple(Department(d, p) for d, p in sorted(parents.items()))
    return check_snapshot(Snapshot(tuple(sorted(users.values(), key=lambda u: u.email)),
                                   departments), name)  # fmt: skip


def check_snapshot(snapshot: Snapshot, name: str) -> Snapshot:
    """The snapshot, when one head and one delegate per department and nobody their own
    manager; else DirectoryError naming the people."""
    _check_roles(snapshot.users, name)
    _check_managers({u.email: u for u in snapshot.users}, name)
    return snapshot


def _columns(header: Sequence[str], name: str) -> dict[int, str]:
    """Column index -> canonical column name, for the headers we know."""
    found: dict[int, str] = {}
    for index, title in enumerate(header):
        column = _COLUMN.get(" ".join((title or "").split()).lower().lstrip("\ufeff"))
        if column is None:
            continue
        if column in found.values():
            raise DirectoryError(f"{name}: line 1: column {column} appears twice ({title!r})")
        found[index] = column
    missing = {"email", "department"} - set(found.values())
    if missing:
        raise DirectoryError(f"{name}: line 1: missing column(s) {', '.join(sorted(missing))}")
    return found


def _user(cells: dict[str, str], where: str) -> User:
    email = _address(cells.get("email", ""), where, "email")
    department = cells.get("department", "")
    if not department:
        raise DirectoryError(f"{where}: column department: empty")
    role = parse_role(cells.get("role", ""))
    if role is None:
        raise DirectoryError(f"{where}: column role: {cells['role'].lower()!r} is {_ROLE_HELP}")
    manager = cells.get("manager", "")
    manager = _address(manager, where, "manager") if manager else ""
    groups = tuple(sorted({g.strip() for g in cells.get("groups", "").split(";") if g.strip()}))
    rank = cells.get("rank", "")
    for label in (rank, *groups):
        if len(label) > MAX_LABEL_CHARS:
            raise DirectoryError(f"{where}: a rank or group longer than {MAX_LABEL_CHARS}")
    labels = (("name", cells.get("name", "")), ("department", department),
              ("parent", cells.get("parent", "")), ("rank", rank),
              *(("groups", group) for group in groups))  # fmt: skip
    for column, label in labels:
        if problem := label_problem(label):
            raise DirectoryError(f"{where}: column {column}: {problem}")
    return User(email, cells.get("name", ""), department, role, rank, manager, False, groups)


def _address(untrusted: str, where: str, column: str) -> str:
    email = untrusted.lower()
    if problem := address_problem(email):
        raise DirectoryError(f"{where}: column {column}: {shown_in_note(email)!r} {problem}")
    return email


def _note_parent(
    parents: dict[str, str | None], department: str, parent: str | None, where: str
) -> None:
    if parent == department:
        raise DirectoryError(
            f"{where}: column parent_department: a department cannot be its own parent"
        )
    known = parents.get(department)
    if department in parents and parent is not None and known not in (None, parent):
        raise DirectoryError(
            f"{where}: column parent_department: {department} has parent {known} on an earlier line"
        )
    if parent is not None or department not in parents:
        parents[department] = parent


def _check_roles(users: Iterable[User], name: str) -> None:
    seen: dict[tuple[str, str], str] = {}
    for user in users:
        if user.role not in APPROVING_ROLES:
            continue
        key = (user.department, user.role)
        if key in seen:
            raise DirectoryError(
                f"{name}: department {user.department} has two {user.role}s: "
                f"{seen[key]} and {user.email}"
            )
        seen[key] = user.email


def _check_managers(users: dict[str, User], name: str) -> None:
    for user in users.values():
        if user.manager == user.email:
            raise DirectoryError(f"{name}: {user.email} is their own manager")


# ------------------------------------------------------------------------------------ readers


def _csv_rows(raw: bytes, name: str) -> Iterator[list[str]]:
    """The rows; a field past the csv module's limit (128 KiB) or a stray quote is the file's
    fault, named with its line, not an error of ours."""
    reader = csv.reader(io.StringIO(_decode(raw, name), newline=""))
    try:
        yield from reader
    except csv.Error as exc:
        raise DirectoryError(
            f"{name}: line {reader.line_num}: not readable as CSV ({exc})"
        ) from None


def _decode(raw: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DirectoryError(f"{name}: neither UTF-8 nor CP949 text")


def _xlsx_rows(raw: bytes, name: str) -> Iterator[list[str]]:
    # Lazy: openpyxl loads only for a spreadsheet.
    from openpyxl import load_workbook

    _check_unpacked_size(raw, name)
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DirectoryError(f"{name}: not a readable XLSX workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in row]
    finally:
        book.close()


def _check_unpacked_size(raw: bytes, name: str) -> None:
    """DirectoryError when the workbook unpacks to more than MAX_UNPACKED_BYTES or holds more
    than MAX_PARTS parts: a 200 KB file can hold a 200 MB cell (a ZIP bomb), and openpyxl
    keeps every shared string in memory. The sizes are the ZIP directory's; zipfile reads no
    part beyond its stated size."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DirectoryError(f"{name}: not a readable XLSX workbook ({exc})") from None
    unpacked = sum(part.file_size for part in parts)
    if len(parts) > MAX_PARTS or unpacked > MAX_UNPACKED_BYTES:
        raise DirectoryError(
            f"{name}: unpacks to {unpacked} bytes in {len(parts)} parts; an HR "
            f"export is at most {MAX_UNPACKED_BYTES} bytes in {MAX_PARTS} parts"
        )


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an employee number typed as a number
    return str(value)
