"""``maildiode account ACTION -c inner.toml ...``: console accounts and their roles.

    maildiode account add -c inner.toml EMAIL --role admin|auditor|security --password-stdin
    maildiode account list -c inner.toml
    maildiode account role -c inner.toml EMAIL admin|auditor|security|none
    maildiode account password -c inner.toml EMAIL --stdin
    maildiode account totp -c inner.toml EMAIL [off]     # a new second factor, shown once
    maildiode account disable|enable -c inner.toml EMAIL
    maildiode account remove -c inner.toml EMAIL           # and revokes its API tokens

Output lines are a contract (docs/console.md "Accounts"); every change is an access record.
Exit status: 0 done, 1 refused (the reason on stderr), 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

import pyotp

from agentkit.access import Action
from inner_agent.web.accounts import Account
from inner_agent.web.errors import AccountRefused
from inner_agent.web.roles import Role
from maildiode.commands.console_site import ConsoleSite, open_site, when
from protocol.errors import NewerStateError

# Shorter passwords fall to guessing even behind argon2; a pass-phrase is easy to remember.
MIN_PASSWORD_CHARS = 10
ROLE_CHOICES = ("admin", "auditor", "security")


class _Usage(Exception):
    """The command line asks for something it cannot: exit 2 with the message."""


def run(args: argparse.Namespace) -> int:
    try:
        site = open_site(args.config)
    except NewerStateError as exc:
        print(f"account {args.action}: {exc}", file=sys.stderr)
        return 1
    if site is None:
        return 2
    try:
        return ACTIONS[args.action](site, args)
    except AccountRefused as refused:
        print(f"account {args.action}: {refused}", file=sys.stderr)
        return 1
    except _Usage as usage:
        print(f"account {args.action}: {usage}", file=sys.stderr)
        return 2
    finally:
        site.close()


def _add(site: ConsoleSite, args: argparse.Namespace) -> int:
    password = _new_password(args.email, from_stdin=args.password_stdin)
    account = site.accounts.add(args.email, Role(args.role), password)
    kind = "console-only" if account.console_only else "directory"
    site.record(Action.ACCOUNT_CREATED, f"{account.email}: role {account.role}, {kind}")
    print(f"added {account.email}: role {account.role}, {kind} account")
    return 0


def _list(site: ConsoleSite, _args: argparse.Namespace) -> int:
    for account in site.accounts.accounts():
        print("\t".join(_columns(site, account)))
    return 0


def _columns(site: ConsoleSite, account: Account) -> list[str]:
    """email, role, kind, state, second factor, created (docs/console.md)."""
    listed = site.accounts.listed(account.email)
    state = "disabled" if account.disabled else "active"
    if not (account.console_only or listed):
        state = "not in the directory"
    return [account.email, str(account.role or "-"),
            "console-only" if account.console_only else "directory", state,
            "totp" if account.second_factor else "-", when(account.created, site)]  # fmt: skip


def _role(site: ConsoleSite, args: argparse.Namespace) -> int:
    before = site.accounts.account(args.email)
    role = None if args.role == "none" else Role(args.role)
    account = site.accounts.set_role(args.email, role)
    was = before.role if before is not None else None
    site.record(Action.ROLE_CHANGED, f"{account.email}: {was or 'none'} -> {role or 'none'}")
    print(f"{account.email}: role {role or 'none'} (was {was or 'none'})")
    return 0


def _password(site: ConsoleSite, args: argparse.Namespace) -> int:
    if not site.accounts.has_account(args.email):
        raise AccountRefused(args.email.lower(), "has no account")
    password = _new_password(args.email, from_stdin=args.stdin)
    account = site.accounts.set_password(args.email, password)
    site.record(Action.PASSWORD_CHANGED, account.email)
    print(f"password set for {account.email}")
    return 0


def _totp(site: ConsoleSite, args: argparse.Namespace) -> int:
    """A new TOTP secret, shown once; ``off`` takes the second factor away."""
    email = args.email.strip().lower()
    if args.off not in (None, "off"):
        raise _Usage(f"{args.off!r}: only `off` may follow the address")
    if args.off == "off":
        site.accounts.set_totp(email, None)
        site.record(Action.TOTP_REMOVED, email)
        print(f"second factor removed for {email}")
        return 0
    secret = pyotp.random_base32()
    site.accounts.set_totp(email, secret)
    site.record(Action.TOTP_RESET, email)
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="maildiode")
    print(f"second factor set for {email}; enter this in the authenticator app (shown once):")
    print(f"secret: {secret}")
    print(f"uri: {uri}")
    return 0


def _disable(site: ConsoleSite, args: argparse.Namespace) -> int:
    account = site.accounts.set_disabled(args.email, True)
    site.record(Action.ACCOUNT_DISABLED, account.email)
    print(f"disabled {account.email}: its sessions and API tokens stop working until enabled")
    return 0


def _enable(site: ConsoleSite, args: argparse.Namespace) -> int:
    account = site.accounts.set_disabled(args.email, False)
    site.record(Action.ACCOUNT_ENABLED, account.email)
    print(f"enabled {account.email}")
    return 0


def _remove(site: ConsoleSite, args: argparse.Namespace) -> int:
    account = site.accounts.remove(args.email)
    revoked = site.tokens.revoke_account(account.email)
    site.record(Action.ACCOUNT_REMOVED, account.email)
    for token in revoked:
        site.record(Action.TOKEN_REVOKED, f"{token.token_id} ({account.email}, account removed)")
    print(f"removed {account.email}; revoked {len(revoked)} API token(s)")
    return 0


def _new_password(email: str, *, from_stdin: bool) -> str:
    """One line of standard input with ``--password-stdin``; else asked twice on a terminal."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"new password for {email}: ")
        if getpass.getpass("again: ") != password:
            raise _Usage("the two passwords differ")
    else:
        raise _Usage("no terminal to ask on: give the password on standard input with "
                     "--password-stdin (add) or --stdin (password)")  # fmt: skip
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountRefused(email.lower(), f"a password has at least {MIN_PASSWORD_CHARS} "
                             "characters")  # fmt: skip
    return password


ACTIONS: dict[str, Callable[[ConsoleSite, argparse.Namespace], int]] = {
    "add": _add,
    "list": _list,
    "role": _role,
    "password": _password,
    "totp": _totp,
    "disable": _disable,
    "enable": _enable,
    "remove": _remove,
}
