"""``maildiode directory import|sync|reports|list|passwd|totp -c inner.toml``: the outbound
approval directory.

    maildiode directory import HR.csv -c inner.toml   # re-runnable; prints what changed
    maildiode directory import HR.xlsx --dry-run -c inner.toml  # what would change; nothing does
    maildiode directory sync -c inner.toml            # one LDAP pass ([directory.ldap])
    maildiode directory reports -c inner.toml         # the stored import/sync reports
    maildiode directory list -c inner.toml
    maildiode directory passwd lee@corp.example -c inner.toml   # password from the terminal,
                                                                # or one line on standard input
    maildiode directory totp lee@corp.example -c inner.toml     # a second factor: prints the
                                                                # secret and its otpauth:// URI once
    maildiode directory totp lee@corp.example off -c inner.toml # takes it away
Only the ``[outbound]`` section of the file is read (its ``directory_db``; ``spool_dir`` where
open approvals are moved to the approvers the directory now names), ``[directory]`` for
``sync``, and ``[audit]`` where ``import``, ``sync``, ``passwd`` and ``totp`` record the
change (access records, docs/console.md: an import records its summary and one record per
user or department added, changed or removed, and per open approval moved, so the grant and
loss of an approver's rights can be traced).

``import`` and ``sync`` (not ``--dry-run``) change who approves whose mail, shared state the
active inner agent acts on: on a standby host (another host's agent holds the state's lease,
``[state] dir`` and ``[lease]``) they are refused with exit status 4 and change nothing
(maildiode.commands.standby_guard, D98); the same when that agent took the lease while the
command ran (the LDAP fetch, reading the file): the change is made under the lease's lock
(D108). Otherwise: 0 done, 1 refused, 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyotp
from pydantic import ConfigDict

from agentkit.access import Action
from agentkit.settings import AuditSection, ConfigError, Section, load_config
from agentkit.upgrade import StateDatabase
from inner_agent.config import LeaseSection, StateSection
from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory import Changes, Directory, Report
from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS
from inner_agent.outbound.directory_sync import DirectorySync, record_report
from inner_agent.outbound.errors import DirectoryError
from inner_agent.outbound.ldap_config import DirectorySection
from inner_agent.outbound.rerouting import move_requests_in
from inner_agent.outbound.state import VERSIONS as OUTBOUND_VERSIONS
from inner_agent.outbound.state import OutboundState
from maildiode.commands.account import MIN_PASSWORD_CHARS
from maildiode.commands.console_site import LOCAL, open_access, operator
from maildiode.commands.standby_guard import (
    EXIT_STANDBY,
    StandbyRefused,
    fenced_write,
    standby_refusal,
)
from maildiode.commands.state_upgrade import upgrade_recorded
from protocol.errors import NewerStateError


class _DirectoryConfig(Section):
    model_config = ConfigDict(extra="ignore", frozen=True)
    outbound: OutboundSection
    directory: DirectorySection = DirectorySection()
    state: StateSection = StateSection()  # where the lease is (a standby refuses to write)
    lease: LeaseSection = LeaseSection()
    audit: AuditSection = AuditSection()  # where an upgrade of the files is recorded (D98)


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(Path(args.config), _DirectoryConfig)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if refusal := _standby_refusal(args, loaded):
        print(refusal, file=sys.stderr)
        return EXIT_STANDBY
    records = _Records()
    try:
        upgrade_recorded(_databases(loaded.outbound), loaded.audit.path)
        status = _run(args, loaded, records)
    except StandbyRefused as exc:
        print(exc, file=sys.stderr)
        return EXIT_STANDBY
    except (DirectoryError, NewerStateError) as exc:
        print(f"directory {args.action}: {exc}", file=sys.stderr)
        return 1
    if status == 0 and args.action in ("passwd", "totp"):
        _record(args.config, args.action, list(args.args))
    if records.kept:
        _write_records(args.config, records.kept)
    return status


def _databases(section: OutboundSection) -> list[StateDatabase]:
    """The files this command opens: the directory (accounts and tokens share it) and the
    outbound state whose open approvals an import or sync moves."""
    return [StateDatabase.at(section.directory_db, DIRECTORY_VERSIONS),
            StateDatabase.at(section.spool_dir / "state.db", OUTBOUND_VERSIONS)]  # fmt: skip


def _standby_refusal(args: argparse.Namespace, loaded: _DirectoryConfig) -> str | None:
    """An import or sync that would write, refused on a standby host (D98)."""
    if args.action not in ("import", "sync") or getattr(args, "dry_run", False):
        return None
    return standby_refusal(f"directory {args.action}", loaded.state.dir, loaded.lease)


def _run(args: argparse.Namespace, loaded: _DirectoryConfig, records: _Records) -> int:
    section = loaded.outbound
    directory = Directory(section.directory_db)
    try:
        rest, dry_run = list(args.args), bool(getattr(args, "dry_run", False))
        if args.action == "import":
            return _import(directory, rest, records, loaded, dry_run=dry_run)
        if args.action == "sync":
            return _sync(directory, rest, records, loaded, dry_run=dry_run)
        action = {"list": _list, "passwd": _passwd, "totp": _totp, "reports": _reports}
        return action[args.action](directory, rest)
    finally:
        directory.close()


@dataclass
class _Records:
    """Access records made while the directory is open, written to the audit store after."""

    kept: list[tuple[Action, str, str | None, int | None]] = field(default_factory=list)

    def __call__(
        self, action: Action, detail: str, *, mail_id: str | None = None, count: int | None = None
    ) -> None:
        self.kept.append((action, detail, mail_id, count))


def _write_records(config: str, records: list[tuple[Action, str, str | None, int | None]]) -> None:
    """An import or sync is a change of access rights (who approves for whom): its summary,
    then one access record per user or department added, changed or removed, and per open
    approval moved."""
    site = open_access(config)
    if site is None:
        return
    try:
        for action, detail, mail_id, count in records:
            site.access.record(operator(), LOCAL, action, mail_id=mail_id, detail=detail,
                               count=count)  # fmt: skip
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


def _import(
    directory: Directory,
    rest: list[str],
    records: _Records,
    loaded: _DirectoryConfig,
    *,
    dry_run: bool,
) -> int:
    if len(rest) != 1:
        print("usage: maildiode directory import FILE.csv|FILE.xlsx [--dry-run] -c inner.toml",
              file=sys.stderr)  # fmt: skip
        return 2
    path = Path(rest[0])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"directory import: {path}: cannot read ({exc.strerror})", file=sys.stderr)
        return 1
    if dry_run:
        report = directory.import_file(raw, path.name, dry_run=True)
        print(f"{path.name}: dry run, nothing changed; an import would make:")
    else:
        with fenced_write("directory import", loaded.state.dir, loaded.lease):
            report = directory.import_file(raw, path.name)
            print(f"{path.name}: {len(directory.users())} users imported")
            record_report(records, path.name, report)
            _move_requests(directory, loaded.outbound, records)
    _print_report(report)
    return 0


def _sync(
    directory: Directory,
    rest: list[str],
    records: _Records,
    loaded: _DirectoryConfig,
    *,
    dry_run: bool,
) -> int:
    ldap = loaded.directory.ldap
    if rest or ldap is None:
        print("usage: maildiode directory sync [--dry-run] -c inner.toml (needs [directory.ldap])",
              file=sys.stderr)  # fmt: skip
        return 2
    with _open_requests(directory, loaded.outbound) as open_requests:
        sync = DirectorySync(ldap, directory, records, open_requests=open_requests,
                             holding=lambda: fenced_write("directory sync", loaded.state.dir,
                                                          loaded.lease))  # fmt: skip
        outcome = sync.preview() if dry_run else sync.run_once()
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    for down in outcome.down:
        print(f"note: {down.server} could not answer ({down.reason}); asked the next",
              file=sys.stderr)  # fmt: skip
    if dry_run:
        print(f"{outcome.server}: dry run, nothing changed; a sync would make:")
    _print_report(outcome.report)
    for move in outcome.moved:
        print(f"moved {move.detail()}")
    return 0


def _move_requests(directory: Directory, section: OutboundSection, records: _Records) -> None:
    state_db, fallback = section.spool_dir / "state.db", section.approval.fallback_approver
    for move in move_requests_in(state_db, directory, fallback, time.time()):
        records(Action.DIRECTORY_CHANGED, move.detail(), mail_id=move.mail_id)
        print(f"moved {move.detail()}")


@contextmanager
def _open_requests(
    directory: Directory, section: OutboundSection
) -> Iterator[tuple[OutboundState, Approvers] | None]:
    """The outbound state's open approvals, when the agent has made its state (never created
    here: a directory kept on a machine without the spool has no approvals to move)."""
    path = section.spool_dir / "state.db"
    if not path.is_file():
        yield None
        return
    state = OutboundState(path)
    try:
        yield state, Approvers(directory, section.approval.fallback_approver)
    finally:
        state.close()


def _print_report(report: Report) -> None:
    print(report.users.summary("users"))
    _print_lines(report.users)
    print(report.departments.summary("departments"))
    _print_lines(report.departments)


def _print_lines(changes: Changes) -> None:
    for line in changes.lines():
        print(f"  {line}")


def _reports(directory: Directory, rest: list[str]) -> int:
    if rest:
        print("usage: maildiode directory reports -c inner.toml", file=sys.stderr)
        return 2
    for report in directory.reports():
        when = datetime.fromtimestamp(report.at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        print(f"{when}\t{report.source}\t{report.summary}")
        for line in report.lines:
            print(f"  {line}")
    return 0


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
