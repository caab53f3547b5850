"""The ``maildiode`` command line: one console script, one subcommand per job.

Each subcommand lives in ``maildiode/commands/<name>.py`` and exposes ``run(args) -> int``.
They are imported only when used, so ``maildiode --help`` stays fast and a command that needs
a browser or a renderer does not load it for the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from agentkit.stats import GROUPS, PERIODS

__all__ = ["build_parser", "main"]

Adder = Callable[[argparse.ArgumentParser], None]


def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="folder to create (must be empty or absent)")
    p.add_argument(
        "--domain",
        action="append",
        dest="domains",
        metavar="D",
        help="a mail domain the outer agent accepts (repeatable; default corp.example)",
    )
    p.add_argument(
        "--smtp-port",
        type=int,
        default=2525,
        metavar="N",
        help="outer agent's SMTP intake port on 127.0.0.1 (default 2525)",
    )
    p.add_argument(
        "--internal-smtp",
        default="127.0.0.1:2526",
        metavar="HOST:PORT",
        help="internal mail server the inner agent injects into (default 127.0.0.1:2526)",
    )
    p.add_argument(
        "--outbound-port",
        type=int,
        default=2527,
        metavar="N",
        help="inner agent's outbound SMTP intake port (default 2527)",
    )
    p.add_argument(
        "--web-port",
        type=int,
        default=8025,
        metavar="N",
        help="inner agent's approval web port (default 8025)",
    )
    p.add_argument(
        "--relay",
        default=None,
        metavar="HOST:PORT",
        help="smarthost the outer agent delivers approved outbound mail to",
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument(
        "--web-tls",
        action="store_true",
        help="serve the approval pages and the console over https with a self-signed "
        "certificate made now (keys/web.crt, keys/web.key; for a trial)",
    )
    p.add_argument(
        "--add-outer",
        default=None,
        metavar="ID",
        help="add one more outer agent, stream ID, to the installation init made in DIR: its "
        "keys, outer-ID.toml, link/ID/ folders and its [[streams.outer]] in inner.toml (issue 23); "
        "--smtp-port is its port",
    )


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, metavar="FILE", help="agent config (TOML)")


def _agent_config(p: argparse.ArgumentParser) -> None:
    """-c FILE, and --agent for a file whose name does not say which agent it is for."""
    _config(p)
    p.add_argument(
        "--agent",
        choices=["outer", "inner"],
        help="which agent the file is for (default: guessed from the file name)",
    )


def _agent_run(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument(
        "--debug",
        action="store_true",
        help="let a fault's Python traceback through (default: one line saying what and where)",
    )
    p.epilog = (
        "exit status: 0 stopped cleanly; 2 refused to start (a config, folder, key or port "
        "problem, one line each: FILE: KEY: problem — fix; or state from a newer release); "
        "3 a fault while starting or running"
    )


def _inner_run(p: argparse.ArgumentParser) -> None:
    _agent_run(p)
    p.add_argument(
        "--standby",
        action="store_true",
        help="wait while another inner agent holds the state's lease and take over when it "
        "expires (default: refuse to start, exit 2)",
    )
    p.epilog = (p.epilog or "") + "; 4 lost the state's lease to another inner agent"


def _check(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    p.epilog = (
        "every problem is one line: FILE: KEY: problem — fix. exit status: 0 ok; 1 warnings "
        "only (a server that does not answer, an empty directory, a department without an "
        "approver); 2 errors (the agent would refuse to start). Run it as the service user: "
        "folders are checked for that user's rights."
    )


def _keygen(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", nargs="?", help="folder to write the key files into")
    p.add_argument("--name", default="signing", help="base name of the files (default signing)")
    p.add_argument("--at-rest", metavar="FILE", help="make an at-rest key file (mode 0600)")
    p.add_argument(
        "--rotate",
        metavar="FILE",
        help="add a new key to an at-rest key file; the old keys stay and still open old files",
    )
    p.add_argument(
        "--encryption",
        action="store_true",
        help="also write an X25519 key pair for optional payload encryption",
    )


def _inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a chunk file from a link folder")
    p.add_argument("-c", "--config", metavar="FILE", help="agent config whose peer keys to use")
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="PUBFILE",
        help="public key file to verify with (repeatable)",
    )


def _carry(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help="pickup folder")
    p.add_argument("dst", metavar="DST", help="delivery folder")
    p.add_argument("--once", action="store_true", help="carry what is there now, then exit")
    p.add_argument(
        "--interval",
        type=float,
        default=0.2,
        metavar="S",
        help="seconds between polls (default 0.2)",
    )


def _resend(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    p.add_argument("first", type=int, metavar="FIRST", help="first sequence number")
    p.add_argument("last", type=int, metavar="LAST", help="last sequence number")
    p.add_argument("--stream", metavar="ID", default=None,
                   help="inner agent with several outer agents: the [[streams.outer]] id whose "
                        "outbound stream to publish again (default: the pair's)")  # fmt: skip


def _requeue(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="inner: quarantine/bundle-<id>.bin; outer: a mail id in spool/inbound/quarantine",
    )


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        default=None,
        metavar="DIR",
        help="working folder (default: a fresh temporary folder)",
    )
    p.add_argument(
        "--web-port",
        type=int,
        default=8080,
        metavar="N",
        help="port of the demo mailbox web page (default 8080)",
    )
    p.add_argument(
        "--exit-after",
        type=float,
        default=None,
        metavar="S",
        help="stop by itself after S seconds (for tests)",
    )


def _render(p: argparse.ArgumentParser) -> None:
    p.add_argument("mail", metavar="MAIL.eml", help="the message to render")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for images")
    p.add_argument(
        "--backend",
        choices=["pymupdf", "chromium"],
        default=None,
        help="renderer (default: from -c, else pymupdf)",
    )
    p.add_argument("-c", "--config", metavar="FILE", help="outer agent config to take options from")


def _scan(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="messages (.eml) to scan")
    p.add_argument("--json", action="store_true", help="one JSON object per line per file")
    p.add_argument("--rules", metavar="FILE", help="rules file (default: built-in rules)")
    p.add_argument("-c", "--config", metavar="FILE", help="inner agent config (its rules file)")
    p.add_argument(
        "--direction", choices=("out", "in"), default="out",
        help="out: the outbound rules (default); in: the inbound rules, decided per recipient",
    )  # fmt: skip
    p.add_argument(
        "--rcpt", action="append", metavar="ADDR",
        help="--direction in: an envelope recipient (repeatable; default: the To and Cc)",
    )  # fmt: skip
    p.add_argument("--sender", metavar="ADDR", help="--direction in: the envelope sender")
    p.add_argument(
        "--ocr",
        choices=("auto", "on", "off"),
        default="auto",
        help="read the text in pictures with Tesseract (auto: when it reads Korean)",
    )


def _directory(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument(
        "action",
        choices=["import", "sync", "reports", "list", "passwd", "totp"],
        help="import an HR export (CSV or XLSX), sync from LDAP once, show the stored "
        "import/sync reports, list users, set a web password, or give a web account a "
        "second factor (TOTP)",
    )
    p.add_argument(
        "args",
        nargs="*",
        metavar="ARG",
        help="FILE.csv or FILE.xlsx for import; USER for passwd; USER [off] for totp",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="import/sync: show what would change (per person) and change nothing",
    )


def _account(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    roles = ["admin", "auditor", "security"]
    for name, summary in (
        ("add", "a console account with a role and a password"),
        ("list", "every account: role, kind, state, second factor, created"),
        ("role", "give an account a console role, or take it away (none)"),
        ("password", "a new password for an account"),
        ("totp", "a new second factor (TOTP) for an account, shown once; or off"),
        ("disable", "stop an account's sign-in, sessions and tokens (kept for enable)"),
        ("enable", "undo disable"),
        ("remove", "forget an account (password, second factor, role) and revoke its tokens"),
    ):
        sub = actions.add_parser(name, help=summary, description=summary)
        _config(sub)
        if name != "list":
            sub.add_argument("email", metavar="EMAIL", help="the account's mail address")
        if name == "add":
            sub.add_argument("--role", required=True, choices=roles, help="its console role")
            sub.add_argument("--password-stdin", action="store_true",
                             help="read the password from one line of standard input")  # fmt: skip
        elif name == "role":
            sub.add_argument("role", metavar="ROLE", choices=[*roles, "none"],
                             help="admin, auditor, security, or none")  # fmt: skip
        elif name == "password":
            sub.add_argument("--stdin", action="store_true",
                             help="read the password from one line of standard input")  # fmt: skip
        elif name == "totp":
            sub.add_argument("off", nargs="?", metavar="off", help="take the second factor away")


def _token(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="a new API token for an account, printed once")
    _config(create)
    create.add_argument("email", metavar="EMAIL", help="the account the token acts for")
    revoke = actions.add_parser("revoke", help="revoke a token, or every token of an account")
    _config(revoke)
    revoke.add_argument("target", metavar="TOKEN_ID|EMAIL", help="a token id or an account")
    listing = actions.add_parser("list", help="tokens: id, account, created, last used, state")
    _config(listing)
    listing.add_argument("email", nargs="?", metavar="EMAIL", help="only this account's")


def _inbound(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="held inbound mail and what became of it")
    _config(listing)
    listing.add_argument("--state", default="waiting",
                         choices=["waiting", "released", "dropped", "expired", "all"])  # fmt: skip
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    decide = actions.add_parser("decide", help="release or drop a held inbound mail (interim, "
                                "until the console lists them)")  # fmt: skip
    _config(decide)
    decide.add_argument("mail_id", metavar="MAIL_ID", help="the held mail (see list)")
    decide.add_argument("verdict", choices=["release", "drop"])
    decide.add_argument("--by", metavar="WHO", help="who decided (default: cli:<user>)")
    rules = actions.add_parser("rules", help="the inbound policy as it would be published now")
    _config(rules)


def _audit(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument(
        "report", nargs="?", choices=["review", "verify"], metavar="review|verify",
        help="review: the monthly review of access records (xlsx), with --month and -o; "
        "verify: check the audit log's hash chain (exit 0 holds, 1 broken)",
    )  # fmt: skip
    p.add_argument(
        "--extract", metavar="FILE",
        help="verify: check an exported extract (--format jsonl or csv) instead of the log: "
        "every row as logged",
    )  # fmt: skip
    p.add_argument(
        "--against", metavar="AUDIT_DB",
        help="verify: check the log against the signed checkpoints kept in another audit log "
        "(a copy of the inner agent's, which keeps the outer agent's): a history rewritten "
        "in the DMZ, key and all, is named",
    )  # fmt: skip
    p.add_argument("--month", metavar="YYYY-MM", help="review: the month, in the console's zone")
    p.add_argument("-o", "--output", metavar="FILE.xlsx", help="review: where to write it")
    p.add_argument("--mail", metavar="ID", help="only events of this mail id")
    p.add_argument("--step", metavar="STEP", help="only events of this step")
    p.add_argument("--since", metavar="TIME", help="from this time (ISO 8601, UTC)")
    p.add_argument("--until", metavar="TIME", help="before this time (ISO 8601, UTC)")
    p.add_argument(
        "--search", metavar="TEXT",
        help="only events whose mail id or any detail (sender, recipient, subject, client "
        "address, attachment name, reason...) contains TEXT, ignoring case",
    )  # fmt: skip
    p.add_argument(
        "--trail", action="store_true",
        help="with --search: every event of each mail found, from intake to its end",
    )  # fmt: skip
    p.add_argument("--format", choices=["table", "jsonl", "csv"], default="table")


def _upgrade(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object per file: store, file, from, to, backup")  # fmt: skip


def _stats(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument("--by", choices=PERIODS, default="day", help="one row per day, month or year")
    p.add_argument(
        "--group", choices=GROUPS, default="none",
        help="and per sender domain, recipient (each counts), quarantine reason or policy rule",
    )  # fmt: skip
    p.add_argument("--since", metavar="TIME", help="from this time (ISO 8601, UTC)")
    p.add_argument("--until", metavar="TIME", help="before this time (ISO 8601, UTC)")
    p.add_argument(
        "--tz", metavar="ZONE", help="time zone of the periods, e.g. Asia/Seoul (default: local)"
    )
    p.add_argument("--format", choices=["table", "csv", "xlsx"], default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (required for xlsx)")


def _backup(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    p.add_argument("dest", metavar="DEST", help="new (or empty) folder for the copy")
    p.add_argument(
        "--with-keys",
        action="store_true",
        help="copy the keys too (keep such a backup apart: see docs/operations.md)",
    )


def _restore(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    p.add_argument("src", metavar="SRC", help="a folder made by maildiode backup")
    p.add_argument("--with-keys", action="store_true", help="put the keys back too")
    p.add_argument(
        "--replace",
        action="store_true",
        help="move the state there is now aside (NAME.before-restore-TIME) instead of refusing",
    )


def _status(p: argparse.ArgumentParser) -> None:
    _agent_config(p)
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument(
        "--prometheus",
        action="store_true",
        help="Prometheus text format, for node_exporter's textfile collector",
    )


COMMANDS: dict[str, tuple[str, Adder]] = {
    "init": ("write a matched pair of configs, keys and folders for a trial", _init),
    "outer": ("run the outer (internet-side) agent", _agent_run),
    "inner": ("run the inner (intranet-side) agent", _inner_run),
    "demo": ("everything on loopback with an embedded mailbox: the main job, ready to try", _demo),
    "render": ("render one mail as the outer agent would (images + manifest.json)", _render),
    "scan": ("personal-data findings and the policy decision for mails", _scan),
    "keygen": ("make a signing key pair (and optionally an encryption pair)", _keygen),
    "inspect": ("print a chunk file's header and whether it verifies", _inspect),
    "check": ("find every mistake in a config and on the host, without starting anything", _check),
    "carry": ("move complete files from SRC to DST like a linkage product", _carry),
    "resend": ("publish a range of sent bundles again (the receiver de-duplicates)", _resend),
    "requeue": (
        "release quarantined mail once fixed: checked or rendered again",
        _requeue,
    ),
    "directory": ("the directory: HR import (CSV/XLSX), LDAP sync, users, passwords", _directory),
    "account": ("console accounts: add, list, role, password, totp, disable, remove", _account),
    "token": ("API tokens: create (printed once), revoke, list", _token),
    "inbound": ("receive filters: held inbound mail (list, decide), the policy (rules)", _inbound),
    "audit": ("query and export the audit log", _audit),
    "stats": ("mails per step per day, month or year, from the audit log", _stats),
    "status": ("link status: counters, gaps, heartbeats, queues", _status),
    "backup": ("a consistent copy of an agent's state while it runs", _backup),
    "restore": ("put an agent's state back from a backup (the agent stopped)", _restore),
    "upgrade": (
        "bring an agent's state to this release; say what each store was and became",
        _upgrade,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maildiode",
        description="One-way cross-domain mail bridge for separated networks.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add_arguments) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary)
        add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = args.command
    try:
        module = importlib.import_module(f"maildiode.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"maildiode.commands.{name}":
            raise
        print(f"maildiode {name}: not available yet in this version", file=sys.stderr)
        return 2
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
