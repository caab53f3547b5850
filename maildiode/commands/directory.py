"""``maildiode directory import|list|passwd|totp -c inner.toml``: the outbound approval
directory.

    maildiode directory import HR.csv -c inner.toml   # re-runnable; prints what changed
    maildiode directory list -c inner.toml
    maildiode directory passwd lee@corp.example -c inner.toml   # password from the terminal,
                                                                # or one line on standard input
    maildiode directory totp lee@corp.example -c inner.toml     # a second factor: prints the
                                                                # secret and its otpauth:// URI once
    maildiode directory totp lee@corp.example off -c inner.toml # takes it away
Only the ``[outbound]`` section of the file is read (its ``directory_db``), and ``[audit]``
where ``import``, ``passwd`` and ``totp`` record the change (access records, docs/console.md:
an import records its summary and one record per user or department added, changed or
removed, so the grant and loss of an approver's rights can be traced).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import dataclass
from pathlib import Path

import pyotp
from pydantic import ConfigDict

from agentkit.access import Action
from agentkit.settings import ConfigError, Section, load_config
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory import Changes, Directory
from inner_agent.outbound.errors import DirectoryError
from maildiode.commands.account import MIN_PASSWORD_CHARS
from maildiode.commands.console_site import open_access


class _OutboundOnly(Section):
    model_config = ConfigDict(extra="ignore", frozen=True)
    outbound: OutboundSection


def run(args: argparse.Namespace) -> int:
    try:
        section = load_config(Path(args.config), _OutboundOnly).outbound
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    directory = Directory(section.directory_db)
    imported: list[_Imported] = []
    try:
        if args.action == "import":
            status = _import(directory, list(args.args), imported)
        else:
            action = {"list": _list, "passwd": _passwd, "totp": _totp}[args.action]
            status = action(directory, list(args.args))
    except DirectoryError as exc:
        print(f"directory {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        directory.close()
    if status == 0 and args.action in ("passwd", "totp"):
        _record(args.config, args.action, list(args.args))
    if imported:
        _record_import(args.config, imported[0])
    return status


@dataclass(frozen=True)
class _Imported:
    file: str
    users: Changes
    departments: Changes


def _record_import(config: str, imported: _Imported) -> None:
    """An import is a change of access rights (who approves for whom): its summary, then one
    access record per user or department added, changed or removed."""
    site = open_access(config)
    if site is None:
        return
    try:
        summary = "; ".join((imported.users.summary("users"),
                             imported.departments.summary("departments")))  # fmt: skip
        kinds = (("user", imported.users), ("department", imported.departments))
        changes = [(noun, mark, name)
                   for noun, found in kinds
                   for mark, names in (("added", found.added), ("changed", found.changed),
                                       ("removed", found.removed))
                   for name in names]  # fmt: skip
        site.record(Action.DIRECTORY_IMPORTED, f"{imported.file}: {summary}", count=len(changes))
        for noun, mark, name in changes:
            site.record(Action.DIRECTORY_CHANGED, f"{noun} {name} {mark}")
    finally:
        site.close()


def _record(config: str, command: str, rest: list[str]) -> None:
    """A changed password or second factor is an access record (a right to access changed)."""
    site = open_access(config)
    if site is None:
        return
    if command == "passwd":
        action = Action.PASSWORD_CHANGED
    else:
        action = Action.TOTP_REMOVED if len(rest) == 2 else Action.TOTP_RESET
    try:
        site.record(action, rest[0].lower())
    finally:
        site.close()


def _import(directory: Directory, rest: list[str], imported: list[_Imported]) -> int:
    if len(rest) != 1:
        print("usage: maildiode directory import FILE.csv -c inner.toml", file=sys.stderr)
        return 2
    path = Path(rest[0])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"directory import: {path}: cannot read ({exc.strerror})", file=sys.stderr)
        return 1
    users, departments = directory.import_csv(raw, path.name)
    imported.append(_Imported(path.name, users, departments))
    print(f"{path.name}: {len(directory.users())} users imported")
    _print_changes(users, "users")
    _print_changes(departments, "departments")
    return 0


def _print_changes(changes: Changes, noun: str) -> None:
    print(changes.summary(noun))
    for mark, names in (("+", changes.added), ("~", changes.changed), ("-", changes.removed)):
        for name in names:
            print(f"  {mark} {name}")


def _list(directory: Directory, rest: list[str]) -> int:
    if rest:
        print("usage: maildiode directory list -c inner.toml", file=sys.stderr)
        return 2
    for user in directory.users():
        account = "account" if directory.has_account(user.email) else "-"
        if directory.totp_secret(user.email):
            account += "+totp"
        print(f"{user.email}\t{user.name}\t{user.department}\t{user.role or 'member'}\t{account}")
    return 0


def _passwd(directory: Directory, rest: list[str]) -> int:
    if len(rest) != 1:
        print("usage: maildiode directory passwd USER -c inner.toml", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass(f"new password for {rest[0]}: ")
        if getpass.getpass("again: ") != password:
            print("directory passwd: the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_CHARS:
        print(f"directory passwd: at least {MIN_PASSWORD_CHARS} characters", file=sys.stderr)
        return 1
    directory.set_password(rest[0], password)
    print(f"password set for {rest[0].lower()}")
    return 0


def _totp(directory: Directory, rest: list[str]) -> int:
    """A new TOTP secret for USER's web account, shown once (to be scanned or typed into an
    authenticator app); ``off`` takes the second factor away."""
    if len(rest) not in (1, 2) or (len(rest) == 2 and rest[1] != "off"):
        print("usage: maildiode directory totp USER [off] -c inner.toml", file=sys.stderr)
        return 2
    user = rest[0].lower()
    if len(rest) == 2:
        directory.set_totp(user, None)
        print(f"second factor removed for {user}")
        return 0
    secret = pyotp.random_base32()
    directory.set_totp(user, secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name="maildiode")
    print(f"second factor set for {user}; enter this in the authenticator app (shown once):")
    print(f"secret: {secret}")
    print(f"uri: {uri}")
    return 0
