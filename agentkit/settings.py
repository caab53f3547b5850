"""Configuration files: TOML, validated once at start-up into frozen typed objects.

Every refusal names the file, the key and the problem, e.g.::

    outer.toml: smtp.listen: port 70000 is out of range (1-65535)

Relative paths inside a file are taken relative to the folder of that file, so a folder made
by ``maildiode init`` can be moved as a whole.
"""

from __future__ import annotations

import difflib
import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agentkit.retention import ACCESS_FLOOR_DAYS, MAIL_FLOOR_DAYS, RIGHTS_FLOOR_DAYS, Retention
from agentkit.storeretention import STORE_CEILING_DAYS, STORE_FLOOR_DAYS
from protocol.errors import KeyFileError
from protocol.keys import read_key_file
from protocol.limits import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_GAP_WAIT_S,
    DEFAULT_HEARTBEAT_S,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_RESEND_WINDOW_S,
    DEFAULT_SETTLE_S,
    DEFAULT_SILENCE_ALARM_S,
    MAX_CHUNK_SIZE,
)
from protocol.refusals import (
    DEFAULT_MAX_QUARANTINE_BYTES,
    DEFAULT_MAX_QUARANTINE_FILES,
    DEFAULT_QUARANTINE_SAMPLE,
    DEFAULT_REFUSAL_INTERVAL_S,
    QuarantineLimits,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_RECIPIENTS",
    "DEFAULT_MIN_FREE_BYTES",
    "MAX_MESSAGE_BYTES_CEILING",
    "MAX_RECIPIENTS_CEILING",
    "SMTP_CLIENT_TIMEOUT_S",
    "SMTP_IDLE_TIMEOUT_S",
    "AuditSection",
    "ConfigError",
    "Domain",
    "HostPort",
    "KeysSection",
    "LinkSection",
    "LogSection",
    "Network",
    "RetentionSection",
    "Section",
    "check_private_key_file",
    "check_public_key_file",
    "config_dir",
    "config_problems",
    "example_key_lines",
    "load_config",
    "parse_host_port",
    "resolve_path",
]

# A config file larger than this is not a config file; refuse before parsing.
MAX_CONFIG_BYTES = 1 << 20

# What both agents' SMTP intakes (the outer's from the internet, the inner's outbound one) and
# spools start from.
# 25 MiB: the common internet limit (Gmail, Outlook): mail bigger than that does not cross
# between an organisation and the internet in either direction. Internal servers cap lower.
DEFAULT_MAX_MESSAGE_BYTES = 25 << 20
MAX_MESSAGE_BYTES_CEILING = 1 << 30  # a configured limit above 1 GiB is a typo
# RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients.
DEFAULT_MAX_RECIPIENTS = 100
MAX_RECIPIENTS_CEILING = 10_000  # a configured limit above this is a typo
# Below this much free disk under a spool, intake answers 452 4.3.1 (the sending server keeps
# the mail and retries), so the disk never fills up under the spool and the state databases
# and link state can still be written.
DEFAULT_MIN_FREE_BYTES = 512 << 20
# RFC 5321 §4.5.3.2.7: a server waits 5 minutes for the next command of an idle client.
SMTP_IDLE_TIMEOUT_S = 300.0
# Our SMTP client (the internal server, the smarthost, an MX) gives up on a connection or a
# reply after this long; the mail waits in its queue and is tried again.
SMTP_CLIENT_TIMEOUT_S = 30.0


class ConfigError(Exception):
    """A configuration file cannot be used. The message names file, key and problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + problem)


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _absent_sections_from_file(cls, data: Any) -> Any:
        """An absent sub-section is read as an empty table, so its relative paths are resolved
        against the config file's folder (a default instance would have been built without it)."""
        if not isinstance(data, dict):
            return data
        missing: dict[str, dict[str, Any]] = {
            name: {}
            for name, field in cls.model_fields.items()
            if name not in data
            and _is_section(field.annotation)
            and not field.is_required()
            and field.default is not None
        }
        return {**data, **missing} if missing else data


def config_dir(info: ValidationInfo) -> Path:
    """The folder of the file being loaded (relative paths are resolved against it)."""
    context = info.context or {}
    base = context.get("config_dir")
    return Path(base) if base is not None else Path.cwd()


def resolve_path(value: str | Path, info: ValidationInfo) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else config_dir(info) / path


# --------------------------------------------------------------------------------------------
# Value types


def parse_host_port(value: str) -> tuple[str, int]:
    """``"127.0.0.1:2525"`` or ``"[::1]:25"`` → (host, port); raises ValueError in words."""
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"{value!r} is not HOST:PORT")
    host, _, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"{value!r} has no host before the port")
    if not port_text.isdigit():
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return host, port


def _check_host_port(value: str) -> str:
    parse_host_port(value)
    return value


HostPort = Annotated[str, AfterValidator(_check_host_port)]
"""A ``HOST:PORT`` string, checked at load time; split it with :func:`parse_host_port`."""


def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP network (e.g. 10.0.0.0/8)") from exc
    return value


Network = Annotated[str, AfterValidator(_check_network)]


def _check_domain(value: str) -> str:
    text = value.strip().lower().rstrip(".")
    labels = text.split(".")
    if len(text) > 253 or len(labels) < 2 or not all(_is_label(label) for label in labels):
        raise ValueError(f"{value!r} is not a domain name")
    return text


def _is_label(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c == "-" for c in label)


Domain = Annotated[str, AfterValidator(_check_domain)]


def check_private_key_file(path: Path) -> Path:
    """A secret file (a private key, a password) must exist, be a regular file, readable by
    this user and by its owner only. The rules are protocol.keys' (their one home)."""
    try:
        read_key_file(path, private=True)
    except KeyFileError as exc:
        raise ValueError(str(exc)) from None
    return path


def check_public_key_file(path: Path) -> Path:
    """A public key file must exist, be a regular file of sane size, readable by this user
    (protocol.keys' rules). What is in it is read by the preflight (agentkit.preflight)."""
    try:
        read_key_file(path, private=False)
    except KeyFileError as exc:
        raise ValueError(str(exc)) from None
    return path


# --------------------------------------------------------------------------------------------
# Sections shared by both agents


class LogSection(Section):
    """How an agent writes its operational log (the audit log is separate)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    file: Path | None = None  # None: standard error

    @field_validator("file", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else resolve_path(value, info)


class AuditSection(Section):
    """Where the audit log lives, and how long its events are kept."""

    path: Path = Path("audit.db")  # SQLite; relative to the config file's folder
    # How long each kind of event is kept, each at or above its legal floor (agentkit.retention):
    # mail events (전자금융감독규정 제18조: ≥ 1 year), access records (안전성 확보조치 기준 제8조:
    # ≥ 2 years), records of access rights (제5조: ≥ 3 years). Five years by default
    # (전자금융거래법 제22조), then deleted by the daily prune.
    retention_days: int = Field(default=1825, ge=MAIL_FLOOR_DAYS, le=36500)
    access_retention_days: int = Field(default=1825, ge=ACCESS_FLOOR_DAYS, le=36500)
    rights_retention_days: int = Field(default=1825, ge=RIGHTS_FLOOR_DAYS, le=36500)
    # The agent signs the chain's newest link this often (and at stop): agentkit.auditsigning.
    checkpoint_every_s: float = Field(default=3600.0, ge=10, le=86400)
    prune_every_s: float = Field(default=86400.0, ge=60, le=7 * 86400)

    def retention(self) -> Retention:
        return Retention(self.retention_days, self.access_retention_days,
                         self.rights_retention_days)  # fmt: skip

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return resolve_path(value, info)


class RetentionSection(Section):
    """How long each store beside the audit log keeps what it holds (agentkit.storeretention):
    days, at least a day, at most five years (docs/compliance.md, "Retention of each store").
    Pruned by the audit upkeep once a day (``[audit] prune_every_s``)."""

    # quarantined files (mail, bundles, refused notifications, refused outbound files)
    quarantine_days: int = Field(default=90, ge=STORE_FLOOR_DAYS, le=STORE_CEILING_DAYS)
    # chunk files the link refused (evidence of what arrived, never a whole mail)
    link_quarantine_days: int = Field(default=30, ge=STORE_FLOOR_DAYS, le=STORE_CEILING_DAYS)


class LinkSection(Section):
    """One direction of the one-way link, as seen by one agent."""

    transport: Literal["folder", "tcp"] = "folder"
    # folder transport
    send_dir: Path | None = None  # where this agent publishes (the linkage pickup folder)
    recv_dir: Path | None = None  # where this agent reads (the linkage delivery folder)
    extension: str = ".mdc"
    armor: bool = False  # ASCII armour for linkage products that only carry text files
    # tcp transport
    tcp_send: HostPort | None = None  # diode proxy address this agent sends to
    tcp_listen: HostPort | None = None  # address this agent receives frames on
    # protocol tuning: the protocol's own defaults (protocol.limits), bounded by its limits
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=4096, le=MAX_CHUNK_SIZE)
    encrypt: bool = False
    heartbeat_s: float = Field(default=DEFAULT_HEARTBEAT_S, gt=0, le=3600)
    gap_wait_s: float = Field(default=DEFAULT_GAP_WAIT_S, gt=0)
    silence_alarm_s: float = Field(default=DEFAULT_SILENCE_ALARM_S, gt=0)
    resend_window_s: float = Field(default=DEFAULT_RESEND_WINDOW_S, ge=0)
    rescan_s: float = Field(default=2.0, gt=0, le=600)  # a full look at recv_dir this often
    settle_s: float = Field(default=DEFAULT_SETTLE_S, ge=0, le=600)
    max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, ge=4096)
    # the receive side's quarantine of refused files (protocol.refusals says why each default)
    quarantine_max_bytes: int = Field(default=DEFAULT_MAX_QUARANTINE_BYTES, ge=0)
    quarantine_max_files: int = Field(default=DEFAULT_MAX_QUARANTINE_FILES, ge=0)
    quarantine_sample: int = Field(default=DEFAULT_QUARANTINE_SAMPLE, ge=0)
    refusal_log_interval_s: float = Field(default=DEFAULT_REFUSAL_INTERVAL_S, gt=0, le=86400)

    def quarantine_limits(self) -> QuarantineLimits:
        return QuarantineLimits(
            max_bytes=self.quarantine_max_bytes,
            max_files=self.quarantine_max_files,
            sample_per_reason=self.quarantine_sample,
            interval_s=self.refusal_log_interval_s,
        )

    @field_validator("send_dir", "recv_dir", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else resolve_path(value, info)

    @field_validator("extension")
    @classmethod
    def _extension(cls, value: str) -> str:
        body = value[1:] if value.startswith(".") else ""
        if not (1 <= len(body) <= 8 and body.isascii() and body.isalnum() and body.islower()):
            raise ValueError(f"{value!r} must be a dot and 1-8 lower-case ASCII letters/digits")
        return value


class KeysSection(Section):
    """Key files. Private keys must be mode 0600."""

    signing_key: Path  # our Ed25519 private key (signs what we publish)
    peer_keys: tuple[Path, ...] = Field(min_length=1, max_length=2)  # the other agent's public keys
    decrypt_key: Path | None = None  # our X25519 private key, when the peer encrypts to us
    encrypt_to: Path | None = None  # the peer's X25519 public key, when we encrypt
    # our AES-256 keys sealing stored mail and personal data (protocol.atrest); None: clear
    at_rest_key: Path | None = None

    @field_validator("signing_key", "decrypt_key", "at_rest_key", mode="before")
    @classmethod
    def _private(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a file path (a string)")
        return check_private_key_file(resolve_path(value, info))

    @field_validator("peer_keys", mode="before")
    @classmethod
    def _public_list(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of file paths")
        return tuple(check_public_key_file(resolve_path(v, info)) for v in value)

    @field_validator("encrypt_to", mode="before")
    @classmethod
    def _public(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a file path (a string)")
        return check_public_key_file(resolve_path(value, info))


def example_key_lines(
    at_rest: str, sealed: bool, decrypt: str, encrypt: str, *, encrypted: bool
) -> str:
    """The example files' [keys] lines of at-rest and link encryption, commented out where
    the keys were not made (both agents' ``example_toml``)."""
    on = "" if sealed else "# "
    link = "" if encrypted else "# "
    return (
        f'{on}at_rest_key = "{at_rest}"  # seals stored mail (0600; never in the backup)\n'
        f'{link}decrypt_key = "{decrypt}"  # X25519: the peer encrypts the link to us\n'
        f'{link}encrypt_to = "{encrypt}"  # X25519: we encrypt the link to the peer'
    )


# --------------------------------------------------------------------------------------------
# Loading

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_config(path: str | Path, model: type[ModelT]) -> ModelT:
    """Read and validate a TOML file into ``model``; raise ConfigError naming file/key/problem."""
    path = Path(path)
    data = _read_toml(path)
    try:
        return model.model_validate(data, context={"config_dir": path.resolve().parent})
    except ValidationError as exc:
        raise _problem(path.name, exc.errors(include_url=False)[0], model) from None


# Rounds of "set the wrong keys aside and validate again": each round can only find problems
# that the ones before hid (a section that failed as a whole), so a few are plenty.
MAX_VALIDATION_ROUNDS = 4


def config_problems(
    path: str | Path, model: type[ModelT]
) -> tuple[ModelT | None, list[ConfigError]]:
    """Every problem of a config file at once (``maildiode check``): validate, set aside each
    key that failed (its default stands in), and validate again, so a mistake does not hide
    the next one. The config is None when it does not validate even so; when problems were
    set aside it is the config with defaults in their place (for further checks only: an
    agent must not run on it)."""
    path = Path(path)
    try:
        data = _read_toml(path)
    except ConfigError as exc:
        return None, [exc]
    context = {"config_dir": path.resolve().parent}
    found: dict[str, ConfigError] = {}
    for _ in range(MAX_VALIDATION_ROUNDS):
        try:
            config = model.model_validate(data, context=context)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            fresh = [e for e in errors if _key_of(e) not in found]
            for error in fresh:
                found.setdefault(_key_of(error), _problem(path.name, error, model))
            if not fresh or not _set_aside(data, errors):
                break
            continue
        return config, list(found.values())
    return None, list(found.values())


def _key_of(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"])


def _set_aside(data: dict[str, Any], errors: list[Any]) -> bool:
    """Remove the keys the errors name from ``data``; False if none could be removed (a
    missing key, or a problem of a whole section)."""
    removed = False
    for error in errors:
        *parents, last = [str(part) for part in error["loc"]] or [""]
        table: Any = data
        for part in parents:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict) and last in table and error["type"] != "missing":
            del table[last]
            removed = True
    return removed


def _read_toml(path: Path) -> dict[str, Any]:
    name = path.name
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(name, "", f"file is {size} bytes; a config file is at most 1 MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file does not exist") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(name, "", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"is not valid TOML: {exc}") from None


def _problem(name: str, error: Any, model: type[BaseModel]) -> ConfigError:
    location = [str(part) for part in error["loc"]]
    key = ".".join(location)
    kind = error["type"]
    if kind == "extra_forbidden":
        return ConfigError(name, key, "unknown key" + _suggestion(model, location))
    if kind == "missing":
        return ConfigError(name, key, "is required but missing")
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind.endswith("_type"):
        message = f"wrong type: {message[0].lower()}{message[1:]} (got {error['input']!r})"
    return ConfigError(name, key, message)


def _suggestion(model: type[BaseModel], location: list[str]) -> str:
    """'(did you mean "listen"?)' for a misspelt key, from the keys allowed at that place."""
    allowed = _keys_at(model, location[:-1])
    close = difflib.get_close_matches(location[-1], allowed, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _keys_at(model: type[BaseModel], parents: list[str]) -> list[str]:
    current: Any = model
    for part in parents:
        fields: Mapping[str, Any] = getattr(current, "model_fields", {})
        field = fields.get(part)
        if field is None:
            return []
        current = _section_type(field.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Section)


def _section_type(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _section_type(arg)
        if found is not None:
            return found
    return None
