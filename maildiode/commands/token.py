"""``maildiode token create|revoke|list -c inner.toml ...``: API tokens (docs/api.md).

    maildiode token create -c inner.toml EMAIL         # the token alone on standard output, once
    maildiode token revoke -c inner.toml TOKEN_ID|EMAIL
    maildiode token list -c inner.toml [EMAIL]         # ids, accounts, times; never a token

A token acts for its account with the account's role at each request. Only an account with a
console role that may sign in now gets one. Every creation and revocation is an access record.
Exit status: 0 done, 1 refused (the reason on stderr), 2 configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from agentkit.access import Action
from inner_agent.web.api_tokens import TokenRow
from inner_agent.web.errors import TokenRefused
from inner_agent.web.roles import CONSOLE_ROLES
from maildiode.commands.console_site import ConsoleSite, open_site, when
from protocol.errors import NewerStateError


def run(args: argparse.Namespace) -> int:
    try:
        site = open_site(args.config)
    except NewerStateError as exc:
        print(f"token {args.action}: {exc}", file=sys.stderr)
        return 1
    if site is None:
        return 2
    try:
        return ACTIONS[args.action](site, args)
    except TokenRefused as refused:
        print(f"token {args.action}: {refused}", file=sys.stderr)
        return 1
    finally:
        site.close()


def _create(site: ConsoleSite, args: argparse.Namespace) -> int:
    email = args.email.strip().lower()
    roles = site.accounts.roles(email)
    if not roles:
        raise TokenRefused(email, "has no account that may sign in (unknown, disabled, or "
                           "no longer in the directory)")  # fmt: skip
    console = [r for r in CONSOLE_ROLES if r in roles]
    if not console:
        raise TokenRefused(email, "has no console role (admin, auditor, security); tokens "
                           "are for the console's API")  # fmt: skip
    row, token = site.tokens.create(email)
    site.record(Action.TOKEN_CREATED, f"{row.token_id} ({email})")
    print(f"token {row.token_id} for {email} ({console[0]}); shown once, stored only as its "
          "SHA-256 digest", file=sys.stderr)  # fmt: skip
    print(token)
    return 0


def _revoke(site: ConsoleSite, args: argparse.Namespace) -> int:
    target = args.target.strip()
    if "@" in target:
        revoked = site.tokens.revoke_account(target.lower())
        if not revoked:
            raise TokenRefused(target.lower(), "has no live token")
    else:
        revoked = [site.tokens.revoke(target)]
    for row in revoked:
        site.record(Action.TOKEN_REVOKED, f"{row.token_id} ({row.account})")
        print(f"revoked {row.token_id} ({row.account})")
    return 0


def _list(site: ConsoleSite, args: argparse.Namespace) -> int:
    for row in site.tokens.tokens(args.email.strip().lower() if args.email else None):
        print("\t".join(_columns(site, row)))
    return 0


def _columns(site: ConsoleSite, row: TokenRow) -> list[str]:
    """id, account, created, last used, state (docs/api.md)."""
    state = "live" if row.live else f"revoked {when(row.revoked, site)}"
    last = when(row.last_used, site) if row.last_used else "never"
    return [row.token_id, row.account, when(row.created, site), last, state]


ACTIONS: dict[str, Callable[[ConsoleSite, argparse.Namespace], int]] = {
    "create": _create,
    "revoke": _revoke,
    "list": _list,
}
