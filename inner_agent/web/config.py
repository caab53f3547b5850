"""``[outbound.web.signin]``: how sign-in is bounded and locked; ``[console]``: the console's
time zone and language. Every key is documented in docs/configuration.md; defaults suit an
approval site of a few hundred people on two cores."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agentkit.settings import Section, resolve_path

__all__ = ["DEFAULT_TIMEZONE", "ConsoleSection", "SignInSection"]

# Issue 16: the console shows times in the site's zone, Korea's unless configured.
DEFAULT_TIMEZONE = "Asia/Seoul"


def _resolve(value: str | Path, info: ValidationInfo) -> Path:
    return resolve_path(value, info)


class SignInSection(Section):
    """Password checks, per-client limits and lockout of the web sign-in."""

    # Lockouts (by account and client) and sessions; survives restarts.
    db: Path = Path("inner/signin.db")
    # argon2 runs at most this many at once (64 MiB each), in threads of low CPU priority.
    hash_workers: int = Field(default=2, ge=1, le=16)
    # Sign-ins waiting for a worker; more are answered 503 with Retry-After.
    hash_queue: int = Field(default=8, ge=0, le=1000)
    # Sign-ins per client address: a bucket of `per_client_burst` refilled at this rate.
    per_client_per_minute: float = Field(default=10.0, gt=0, le=6000)
    per_client_burst: int = Field(default=10, ge=1, le=1000)
    # Wrong passwords (account and client together) before the first lock.
    lock_after: int = Field(default=5, ge=1, le=100)
    # The first lock; each failure after a lock ran out locks again for twice as long.
    lock_first_s: float = Field(default=60.0, gt=0, le=86400)
    lock_max_s: float = Field(default=3600.0, gt=0, le=7 * 86400)

    _paths = field_validator("db", mode="before")(_resolve)

    @model_validator(mode="after")
    def _order(self) -> SignInSection:
        if self.lock_first_s > self.lock_max_s:
            raise ValueError("lock_first_s must not be longer than lock_max_s")
        return self


class ConsoleSection(Section):
    """How the console and the API show times, and in which language its pages speak."""

    # An IANA zone name: times on the pages, in the API's answers and in the review report.
    timezone: str = DEFAULT_TIMEZONE
    language: Literal["ko", "en"] = "ko"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name such as Asia/Seoul") from None
        return value

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)
