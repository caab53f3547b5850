"""A private Postfix on a loopback port, delivering one domain to a Maildir the test reads.

Follows /work/shared/notes/postfix-on-loopback.md: its own config, queue and data folders;
the folder is made under /var/tmp (not pytest's 0700 tmp_path: the postfix and nobody users
must be able to traverse it) and removed at close; the system main.cf lists our config folder in ``alternate_config_directories`` (added under a
file lock while the instance runs, removed at stop); the log goes to a file under our folder.

    with PostfixInstance(domain="corp.example") as postfix:
        postfix.port                  # SMTP on 127.0.0.1:port
        postfix.messages()            # delivered files in Maildir new/, oldest first
        postfix.maildir               # BASE/DOMAIN: the Maildir (new/ holds delivered mail)
        postfix.stop(); postfix.start()   # e.g. "internal server down for a minute"

    PostfixInstance().start(2526)     # without the context manager: call close() at the end

    with SmtpSink() as sink, PostfixInstance(relay_to=sink.port) as relay:
        relay.sent_count()            # mails relayed onward to the sink (the log's status=sent)
"""

from __future__ import annotations

import atexit
import fcntl
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from maildiode.trial.stack import free_port

__all__ = ["PostfixInstance", "SmtpSink", "free_port"]

SYSTEM_CONFIG = Path("/etc/postfix")
LOCK_FILE = Path("/tmp/maildiode-postfix-alternate.lock")
START_TIMEOUT_S = 30.0
SETTLED_AGE_S = 10.0  # well past Postfix's "changed just now" window (see _settled)
# A queue folder Postfix's own checks laid out, one per test process (see _lay_out_queue).
_CHECKED_QUEUE: dict[str, Path] = {}


@contextmanager
def _system_lock() -> Iterator[None]:
    with open(LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postconf(*args: str) -> str:
    done = subprocess.run(["postconf", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _alternates() -> list[str]:
    return [
        d for d in _postconf("-h", "alternate_config_directories").replace(",", " ").split() if d
    ]


def _set_alternates(folders: list[str]) -> None:
    _postconf("-e", f"alternate_config_directories = {' '.join(folders)}")
    _settled(SYSTEM_CONFIG / "main.cf")  # postconf -e renames a whole new file into place


def _settled(main_cf: Path) -> None:
    """Date a main.cf written whole a few seconds back. Every Postfix command that reads a
    main.cf changed in the last second or two first sleeps until it is older (a reader's guard
    against an editor still writing it): 1.5-2 s at each start of an instance, twice (its own
    file, just written, and the system one, just edited to list it), and at the next instance's
    first ``postconf``. Neither file is ever seen half-written: ours is written before Postfix
    runs, the system one is replaced by a rename, under our lock."""
    past = time.time() - SETTLED_AGE_S
    os.utime(main_cf, (past, past))


_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file_prefixes = /var, /dev/stdout, {base}
maillog_file = {base}/postfix.log
myhostname = internal.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
disable_dns_lookups = yes
message_size_limit = {size_limit}
virtual_mailbox_limit = 0
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {maildir_base}
virtual_mailbox_maps = static:{domain}/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
alias_maps =
alias_database =
smtputf8_enable = no
default_process_limit = 50
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0
"""


class PostfixInstance:
    """One private Postfix. ``start()`` / ``stop()`` may be called repeatedly."""

    def __init__(
        self,
        base: Path | None = None,
        *,
        domain: str = "corp.example",
        port: int | None = None,
        size_limit: int = 50 << 20,
        extra_main_cf: str = "",
        relay_to: int | None = None,
    ) -> None:
        if shutil.which("postfix") is None:
            raise RuntimeError("postfix is not installed (.ci/run installs it)")
        self._own_base = base is None
        if base is None:
            base = Path(tempfile.mkdtemp(prefix="maildiode-postfix-", dir="/var/tmp"))
            base.chmod(0o755)
        self.base = base.resolve()
        self.domain = domain
        self.port = port or free_port()
        self.config_dir = self.base / "config"
        self.queue_dir = self.base / "queue"
        self.data_dir = self.base / "data"
        self.maildir_base = self.base / "mail"
        self.maildir = self.maildir_base / domain
        self._size_limit = size_limit
        self._extra_main_cf = extra_main_cf  # later lines override earlier ones in main.cf
        if relay_to is not None:  # everything not for ``domain`` goes onward over SMTP
            self._extra_main_cf += f"relayhost = [127.0.0.1]:{relay_to}\n"
        self._configured = False
        self._queue_laid_out = False
        self.running = False

    # -- set-up ---------------------------------------------------------------------------

    def _configure(self) -> None:
        nobody, nogroup = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        for folder in (self.config_dir, self.queue_dir, self.data_dir, self.maildir_base):
            folder.mkdir(parents=True, exist_ok=True)
        os.chown(self.data_dir, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)
        os.chown(self.maildir_base, nobody, nogroup)
        (self.config_dir / "main.cf").write_text(_MAIN_CF.format(
            queue=self.queue_dir, data=self.data_dir, base=self.base, domain=self.domain,
            size_limit=self._size_limit, maildir_base=self.maildir_base, uid=nobody, gid=nogroup,
        ) + self._extra_main_cf)  # fmt: skip
        (self.config_dir / "master.cf").write_text(self._master_cf())
        _settled(self.config_dir / "main.cf")
        for name in ("dynamicmaps.cf", "postfix-files"):
            if (SYSTEM_CONFIG / name).exists():
                shutil.copy(SYSTEM_CONFIG / name, self.config_dir / name)
        for name in ("dynamicmaps.cf.d", "postfix-files.d"):
            if (SYSTEM_CONFIG / name).is_dir():
                shutil.copytree(SYSTEM_CONFIG / name, self.config_dir / name, dirs_exist_ok=True)
        self._configured = True

    def _master_cf(self) -> str:
        lines = []
        for line in (SYSTEM_CONFIG / "master.cf").read_text().splitlines():
            fields = line.split()
            if fields[:2] in (["smtp", "inet"], ["submission", "inet"], ["smtps", "inet"]):
                line = "#" + line
            lines.append(line)
        lines.append(f"127.0.0.1:{self.port} inet n - n - - smtpd")
        return "\n".join(lines) + "\n"

    # -- running --------------------------------------------------------------------------

    def start(self, port: int | None = None) -> None:
        """Start (again); ``port`` moves the listener (the config is rewritten)."""
        if port is not None and port != self.port:
            self.port = port
            self._configured = False
        if not self._configured:
            self._configure()
        with _system_lock():
            folders = _alternates()
            if str(self.config_dir) not in folders:
                _set_alternates([*folders, str(self.config_dir)])
        if not self._queue_laid_out:
            self._lay_out_queue()
        self._postfix("start")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._port_open():
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not listen on {self.port}; see {self.log_path}")
            time.sleep(0.1)
        self.running = True

    def stop(self) -> None:
        """Stop the instance (``postfix stop``) and wait until the port is closed."""
        if not self.running:
            return
        self._postfix("stop")
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._port_open() or self._master_running():
            if time.monotonic() > deadline:
                self._postfix("abort")
                break
            time.sleep(0.1)
        self.running = False

    def close(self) -> None:
        """Stop, unlist our config folder from the system main.cf, remove our folder."""
        self.stop()
        with _system_lock():
            folders = _alternates()
            if str(self.config_dir) in folders:
                _set_alternates([f for f in folders if f != str(self.config_dir)])
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def _lay_out_queue(self) -> None:
        """The fresh queue's folders, copied from the first instance's, which ``postfix check``
        made (post-install create-missing, postsuper, the permission scans); then Postfix's own
        ``quick-start`` marker (what ``postfix quick-stop`` leaves) lets ``postfix start`` skip
        those checks. They take 1.5-6 s on a fresh queue, where they find nothing else to do,
        and every end-to-end test starts one; the copy takes milliseconds."""
        checked = _CHECKED_QUEUE.get("queue")
        if checked is None:
            done = subprocess.run(["postfix", "-c", str(self.config_dir), "check"],
                                  capture_output=True, text=True)  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"postfix -c {self.config_dir} check failed "
                                   f"({done.returncode}): {done.stderr.strip()}")  # fmt: skip
            checked = Path(tempfile.mkdtemp(prefix="maildiode-postfix-queue-", dir="/var/tmp"))
            atexit.register(shutil.rmtree, checked, ignore_errors=True)
            _copy_tree(self.queue_dir, checked)
            _CHECKED_QUEUE["queue"] = checked
        else:
            _copy_tree(checked, self.queue_dir)
        (self.queue_dir / "quick-start").touch()
        self._queue_laid_out = True

    def _postfix(self, command: str) -> None:
        done = subprocess.run(
            ["postfix", "-c", str(self.config_dir), command], capture_output=True, text=True
        )
        if done.returncode != 0 and command == "start":
            raise RuntimeError(
                f"postfix -c {self.config_dir} start failed ({done.returncode}): "
                f"{done.stderr.strip()} {self.log_tail()}"
            )

    def _port_open(self) -> bool:
        return _listening(self.port)

    def _master_running(self) -> bool:
        pid_file = self.queue_dir / "pid" / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return not _exited(pid)

    # -- reading --------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.base / "postfix.log"

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def messages(self) -> list[Path]:
        """Delivered messages (Maildir ``new/``), oldest first."""
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        paths = [new / name for name in os.listdir(new)]
        return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def sent_count(self) -> int:
        """Deliveries the log reports as done (``status=sent``): onward over SMTP, or local."""
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(errors="replace").count(" status=sent ")

    def queue_empty(self) -> bool:
        done = subprocess.run(["postqueue", "-c", str(self.config_dir), "-j"],
                              capture_output=True, text=True)  # fmt: skip
        return done.returncode == 0 and not done.stdout.strip()

    def __enter__(self) -> PostfixInstance:
        try:
            self.start()
        except BaseException:
            self.close()  # __exit__ does not run when __enter__ fails
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SmtpSink:
    """Postfix's ``smtp-sink`` on a loopback port: takes every mail and throws it away (a fast C
    server, so what is measured in front of it is not the sink)."""

    def __init__(self, port: int | None = None, backlog: int = 256) -> None:
        if shutil.which("smtp-sink") is None:
            raise RuntimeError("smtp-sink is not installed (it comes with postfix)")
        self.port = port or free_port()
        self._command = ["smtp-sink", "-u", "nobody", f"127.0.0.1:{self.port}", str(backlog)]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SmtpSink:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"smtp-sink did not listen on {self.port}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


def _exited(pid: int) -> bool:
    """The process has exited and waits to be reaped (a zombie): it holds no port, lock or file
    any more. The master is a daemon, so init reaps it, and some inits take their time (1.5 s
    on the development machine, at every stop)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # the name in brackets may hold ")"


def _copy_tree(source: Path, target: Path) -> None:
    """``cp -a``: owners and modes as they are (the queue's folders belong to postfix and
    postdrop; shutil.copytree would leave them root's)."""
    subprocess.run(["cp", "-a", f"{source}/.", str(target)], check=True)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
